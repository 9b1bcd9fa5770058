using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// Walks the ONNX graph in order and lowers each node to an engine <see cref="Layer"/>, folding everything computable
/// at load time (constants, shape arithmetic, weight masks) and resolving Identity/Dropout to aliases. Fusion of
/// neighbouring layers is left to <see cref="LayerFusion"/>.
/// </summary>
internal sealed class GraphLowering
{
    /// <summary>Every operator the importer accepts on runtime tensors (constant-only subgraphs may also use <see cref="ConstantFolder"/>'s).</summary>
    public const string SupportedOperators = "Conv (group 1 or depthwise), BatchNormalization, Relu, Clip, HardSigmoid, HardSwish, Sigmoid, "
        + "Add, Sub, Mul, Div, Pad, GlobalAveragePool, ReduceMean, AveragePool (global), Flatten, Reshape, Squeeze, Unsqueeze, "
        + "Gemm, MatMul, Softmax, Transpose (NHWC input), Identity, Dropout, Constant, Shape, Gather, Concat, Cast";

    private readonly OnnxModelFile _file;
    private readonly Dictionary<string, OnnxTensor> _constants = [];
    private readonly Dictionary<string, ValueShape> _values = [];
    private readonly Dictionary<string, string> _aliases = [];
    private readonly LoweredGraph _graph;

    /// <summary>Constant arrays a layer already holds as its own weights (by reference): a second user gets a copy.</summary>
    private readonly HashSet<float[]> _taken = new(ReferenceEqualityComparer.Instance);

    private GraphLowering(OnnxModelFile file, LoweredGraph graph)
    {
        _file = file;
        _graph = graph;
    }

    public static LoweredGraph Lower(OnnxModelFile file, IReadOnlyList<int>? inputShape, CancellationToken cancellationToken)
    {
        var initializers = new Dictionary<string, OnnxTensor>();
        foreach (var tensor in file.Graph.Initializer) initializers[tensor.Name] = file.ReadTensor(tensor);
        foreach (var sparse in file.Graph.SparseInitializer) initializers[sparse.Values?.Name ?? ""] = file.ReadSparseTensor(sparse);
        file.ReleaseInitializers();

        var lowering = new GraphLowering(file, CreateGraph(file, initializers, inputShape));
        foreach (var (name, tensor) in initializers) lowering._constants[name] = tensor;
        lowering._values[lowering._graph.InputName] = lowering._graph.InputShape;
        foreach (var node in file.Graph.Node)
        {
            cancellationToken.ThrowIfCancellationRequested();
            lowering.LowerNode(node);
        }
        lowering.ResolveOutput();
        return lowering._graph;
    }

    /// <summary>Finds the single float image input (graph inputs that are not initializers) and fixes its dims.</summary>
    private static LoweredGraph CreateGraph(OnnxModelFile file, Dictionary<string, OnnxTensor> initializers, IReadOnlyList<int>? overrideShape)
    {
        var inputs = file.Graph.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
        if (inputs.Count != 1)
            throw file.Unsupported(null, $"the graph has {inputs.Count} runtime inputs ({string.Join(", ", inputs.Select(i => i.Name))}); exactly one image input is supported.");
        var input = inputs[0];
        var tensorType = input.Type?.TensorType;
        if (tensorType is null || tensorType.ElemType != (int)TensorProto.Types.DataType.Float)
            throw file.Unsupported(null, $"input '{input.Name}' is not a float tensor; supported: one float32 image tensor.");

        bool hwc = file.Graph.Node.Any(n => n.OpType == "Transpose" && n.Input.Count > 0 && n.Input[0] == input.Name
            && new NodeAttributes(n, file).Ints("perm") is [0, 3, 1, 2]);
        var declared = tensorType.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1).ToArray() ?? [];
        long[] dims;
        if (overrideShape is not null)
        {
            if (overrideShape.Count != 4 || overrideShape.Any(d => d <= 0))
                throw new ArgumentException($"SparseModelOptions.InputShape [{string.Join(",", overrideShape)}] must be four positive dims, "
                    + (hwc ? "NHWC" : "NCHW") + $", for model '{file.Source}'.", nameof(overrideShape));
            if (declared.Length == 4 && Enumerable.Range(1, 3).Any(a => declared[a] > 0 && declared[a] != overrideShape[a]))
                throw new ArgumentException($"SparseModelOptions.InputShape [{string.Join(",", overrideShape)}] contradicts the model's fixed input dims [{string.Join(",", declared)}] ('{file.Source}').", nameof(overrideShape));
            dims = overrideShape.Select(d => (long)d).ToArray();
        }
        else
        {
            if (declared.Length != 4)
                throw file.Unsupported(null, $"input '{input.Name}' has rank {declared.Length}; supported: a rank-4 image tensor, NCHW (or NHWC followed by Transpose [0,3,1,2]).");
            for (int axis = 1; axis < 4; axis++)
                if (declared[axis] <= 0)
                    throw file.Unsupported(null, $"input '{input.Name}' dimension {axis} is dynamic; fix it with SparseModelOptions.InputShape.");
            dims = declared;
        }
        dims[0] = 1; // the engine plans one image; SparseModel.Run loops over the batch
        var shape = hwc ? new ValueShape((int)dims[3], (int)dims[1], (int)dims[2]) : new ValueShape((int)dims[1], (int)dims[2], (int)dims[3]);
        if (OnnxTensor.ElementCount(dims) is <= 0 or > int.MaxValue / 4)
            throw file.Unsupported(null, $"input '{input.Name}' dims [{string.Join(",", dims)}] are empty or too large.");
        return new LoweredGraph(input.Name, dims, hwc, shape);
    }

    private void ResolveOutput()
    {
        if (_file.Graph.Output.Count != 1)
            throw _file.Unsupported(null, $"the graph has {_file.Graph.Output.Count} outputs; exactly one is supported.");
        string name = _file.Graph.Output[0].Name;
        string value = Resolve(name);
        if (!_values.TryGetValue(name, out var shape) || value == _graph.InputName)
            throw _file.Unsupported(null, $"output '{name}' does not depend on the input through any layer.");
        _graph.OutputName = name;
        _graph.OutputValue = value;
        _graph.OutputShape = shape;
    }

    private string Resolve(string name) => _aliases.TryGetValue(name, out string? target) ? target : name;

    private void LowerNode(NodeProto node)
    {
        if (node.Domain is not ("" or "ai.onnx"))
            throw _file.Unsupported(node, $"operator domain '{node.Domain}' is not supported; supported: the default ONNX domain, operators {SupportedOperators}.");
        if (node.Output.Count == 0) return;
        if (node.Output.Skip(1).Any(o => o.Length > 0 && IsRead(o)))
            throw _file.Unsupported(node, "its secondary outputs (e.g. a Dropout mask or training statistics) are read; only a node's first output is supported.");
        // Inputs keep their ONNX names (a reshape alias has its own shape); layers read the resolved buffer names.
        string[] inputs = node.Input.ToArray();
        foreach (string input in inputs)
            if (input.Length > 0 && !_constants.ContainsKey(input) && !_values.ContainsKey(input))
                throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}) reads '{input}', which no earlier node or initializer produces.");
        if (_graph.InputIsHwc && inputs.Any(i => Resolve(i) == _graph.InputName) && node.OpType != "Transpose")
            throw _file.Unsupported(node, $"reads the NHWC input '{_graph.InputName}' directly; only a Transpose [0,3,1,2] to NCHW may.");

        bool allConstant = inputs.All(i => i.Length == 0 || _constants.ContainsKey(i));
        if (node.OpType == "Constant" || (allConstant && inputs.Length > 0 && ConstantFolder.CanFold(node.OpType)))
        {
            var constantInputs = inputs.Select(i => i.Length == 0 ? null : _constants[i]).ToArray();
            _constants[node.Output[0]] = ConstantFolder.Fold(node, constantInputs, _file);
            return;
        }
        var attributes = new NodeAttributes(node, _file);
        switch (node.OpType)
        {
            case "Shape":
                _constants[node.Output[0]] = ConstantFolder.ShapeTensor(Value(node, inputs, 0).OnnxDims, attributes);
                return;
            case "Identity" or "Dropout":
                _values[node.Output[0]] = Value(node, inputs, 0);
                _aliases[node.Output[0]] = Resolve(inputs[0]);
                return;
        }

        switch (node.OpType)
        {
            case "Conv": LowerConv(node, inputs, attributes); break;
            case "BatchNormalization": LowerBatchNormalization(node, inputs, attributes); break;
            case "Relu" or "Clip" or "HardSigmoid" or "HardSwish" or "Sigmoid":
            {
                var shape = Value(node, inputs, 0); // checks input 0 exists before it is read
                Emit(node, LayerKind.Activation, [inputs[0]], shape).Activation = ActivationOf(node, inputs, attributes);
                break;
            }
            case "Add" or "Sub" or "Mul" or "Div": LowerElementwise(node, inputs); break;
            case "Pad": LowerPad(node, inputs, attributes); break;
            case "GlobalAveragePool": LowerGlobalPool(node, inputs, keepDims: true); break;
            case "AveragePool": LowerAveragePool(node, inputs, attributes); break;
            case "ReduceMean": LowerReduceMean(node, inputs, attributes); break;
            case "Flatten" or "Reshape" or "Squeeze" or "Unsqueeze" or "Transpose": LowerReshape(node, inputs, attributes); break;
            case "Gemm" or "MatMul": LowerGemm(node, inputs, attributes); break;
            case "Softmax": LowerSoftmax(node, inputs, attributes); break;
            default:
                throw _file.Unsupported(node, $"operator {node.OpType} is not supported; supported: {SupportedOperators}.");
        }
    }

    private Layer Emit(NodeProto node, LayerKind kind, string[] inputs, ValueShape outputShape)
    {
        var layer = new Layer(kind, OnnxModelFile.NodeName(node), node.OpType, inputs.Select(Resolve).ToArray(), node.Output[0], outputShape);
        _values[node.Output[0]] = outputShape;
        _graph.Layers.Add(layer);
        return layer;
    }

    private ValueShape Value(NodeProto node, string[] inputs, int index)
    {
        if (index >= inputs.Length || inputs[index].Length == 0)
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}) lacks its input {index}.");
        return _values.TryGetValue(inputs[index], out var shape) ? shape
            : throw _file.Unsupported(node, $"input {index} ('{inputs[index]}') is a constant where the engine needs a runtime tensor.");
    }

    private OnnxTensor? OptionalConstant(NodeProto node, string[] inputs, int index)
    {
        if (index >= inputs.Length || inputs[index].Length == 0) return null;
        return _constants.TryGetValue(inputs[index], out var tensor) ? tensor
            : throw _file.Unsupported(node, $"input {index} ('{inputs[index]}') must be a constant (an initializer or computable at load time).");
    }

    private OnnxTensor Constant(NodeProto node, string[] inputs, int index) => OptionalConstant(node, inputs, index)
        ?? throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}) lacks its input {index}.");

    private Exception Unsupported(NodeProto node, string message) => _file.Unsupported(node, message);

    private void RequireSpatial(NodeProto node, ValueShape x)
    {
        if (x.Flat) throw Unsupported(node, $"needs an NCHW tensor but its input is the flattened {x}.");
    }

    private void LowerConv(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        RequireSpatial(node, x);
        var weights = Constant(node, inputs, 1);
        var bias = OptionalConstant(node, inputs, 2);
        if (weights.Rank != 4 || !weights.IsFloat)
            throw Unsupported(node, $"weights {weights} are not a float OIHW tensor; supported: 2-D convolutions.");
        int outChannels = (int)weights.Dims[0], groupChannels = (int)weights.Dims[1];
        int kernelHeight = (int)weights.Dims[2], kernelWidth = (int)weights.Dims[3];
        long group = attributes.Int("group", 1);
        bool depthwise = group == x.Channels && group > 1 && groupChannels == 1 && outChannels == x.Channels;
        if (group != 1 && !depthwise)
            throw Unsupported(node, $"group {group} with weights {weights} on {x.Channels} channels is not supported; supported: group 1, or group = channels with one filter per channel (depthwise).");
        if (group == 1 && groupChannels != x.Channels)
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Conv): weights {weights} do not match {x.Channels} input channels.");
        if (attributes.Ints("dilations") is { } dilations && dilations.Any(d => d != 1))
            throw Unsupported(node, $"dilations [{string.Join(",", dilations)}] are not supported; supported: dilation 1.");
        if (attributes.Ints("kernel_shape") is { } kernelShape && !kernelShape.SequenceEqual([kernelHeight, kernelWidth]))
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Conv): kernel_shape [{string.Join(",", kernelShape)}] disagrees with weights {weights}.");
        if (bias is not null && bias.Length != outChannels)
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Conv): bias {bias} does not match {outChannels} output channels.");

        long[] strides = attributes.Ints("strides", 2, 1);
        // Checked as longs: a cast of 2^31 - 1 or 2^32 + 1 to int would overflow the kernels' row arithmetic or wrap silently.
        if (strides.Any(stride => stride < 1 || stride > MaxConvExtent) || attributes.Ints("pads") is { } declaredPads && declaredPads.Any(pad => pad > MaxConvExtent))
            throw Unsupported(node, $"strides [{string.Join(",", strides)}] or pads [{string.Join(",", attributes.Ints("pads") ?? [])}] are out of range; supported: strides 1 to {MaxConvExtent}, pads 0 to {MaxConvExtent}.");
        var padding = ConvPadding(node, attributes, x, kernelHeight, kernelWidth, (int)strides[0], (int)strides[1]);
        // A stride beyond the padded input reads only position 0, exactly as a stride of the padded size does (the engine's limit).
        strides = [Math.Min(strides[0], x.Height + (long)padding.Top + padding.Bottom), Math.Min(strides[1], x.Width + (long)padding.Left + padding.Right)];
        int outHeight = OutputSize(node, x.Height, padding.Top + padding.Bottom, kernelHeight, (int)strides[0]);
        int outWidth = OutputSize(node, x.Width, padding.Left + padding.Right, kernelWidth, (int)strides[1]);
        var layer = Emit(node, LayerKind.Conv, [inputs[0]], new ValueShape(outChannels, outHeight, outWidth));
        layer.Group = (int)group;
        layer.KernelHeight = kernelHeight;
        layer.KernelWidth = kernelWidth;
        layer.StrideHeight = (int)strides[0];
        layer.StrideWidth = (int)strides[1];
        layer.Padding = padding;
        layer.Weights = Take(weights.Floats!);
        layer.Bias = bias is null ? new float[outChannels] : Take(bias.AsFloats());
    }

    /// <summary>
    /// A constant's values as a layer's own weights, which the fusion passes later rewrite in place (folding BatchNorm and
    /// affine layers): the array itself for its first user, which saves copying every weight of the model once at load,
    /// and a copy for any further one (weights shared between layers).
    /// </summary>
    private float[] Take(float[] values) => _taken.Add(values) ? values : (float[])values.Clone();

    /// <summary>Largest stride or pad of a convolution: far above any real model, far below int overflow in the kernels' index arithmetic.</summary>
    private const int MaxConvExtent = 1 << 16;

    private Padding ConvPadding(NodeProto node, NodeAttributes attributes, ValueShape x, int kernelHeight, int kernelWidth, int strideHeight, int strideWidth)
    {
        if (strideHeight < 1 || strideWidth < 1)
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}): strides must be positive.");
        string autoPad = attributes.String("auto_pad", "NOTSET");
        switch (autoPad)
        {
            case "NOTSET" or "":
                long[] pads = attributes.Ints("pads", 4, 0);
                if (pads.Any(p => p < 0))
                    throw Unsupported(node, $"negative pads [{string.Join(",", pads)}] are not supported.");
                return new Padding((int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]);
            case "VALID":
                return default;
            case "SAME_UPPER":
                return Padding.SameUpper(x.Height, x.Width, kernelHeight, kernelWidth, strideHeight, strideWidth);
            case "SAME_LOWER":
                var upper = Padding.SameUpper(x.Height, x.Width, kernelHeight, kernelWidth, strideHeight, strideWidth);
                return new Padding(upper.Bottom, upper.Right, upper.Top, upper.Left);
            default:
                throw Unsupported(node, $"auto_pad '{autoPad}' is not supported; supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER.");
        }
    }

    private int OutputSize(NodeProto node, int size, int padding, int kernel, int stride)
    {
        int output = (size + padding - kernel) / stride + 1;
        if (size + padding < kernel)
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}): kernel {kernel} is larger than the padded input {size + padding}.");
        return output;
    }

    private void LowerBatchNormalization(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        if (attributes.Int("spatial", 1) != 1)
            throw Unsupported(node, "spatial = 0 (per-pixel statistics) is not supported; supported: spatial = 1.");
        float epsilon = attributes.Float("epsilon", 1e-5f);
        float[] gamma = PerChannel(node, Constant(node, inputs, 1), x, isChannelVector: true),
            beta = PerChannel(node, Constant(node, inputs, 2), x, isChannelVector: true),
            mean = PerChannel(node, Constant(node, inputs, 3), x, isChannelVector: true),
            variance = PerChannel(node, Constant(node, inputs, 4), x, isChannelVector: true);
        var scale = new float[gamma.Length];
        var shift = new float[gamma.Length];
        for (int c = 0; c < scale.Length; c++)
        {
            scale[c] = gamma[c] / MathF.Sqrt(variance[c] + epsilon);
            shift[c] = beta[c] - mean[c] * scale[c];
        }
        EmitAffine(node, inputs[0], x, scale, shift);
    }

    private bool IsRead(string valueName) => _file.Graph.Node.Any(n => n.Input.Contains(valueName)) || _file.Graph.Output.Any(o => o.Name == valueName);

    private void EmitAffine(NodeProto node, string input, ValueShape x, float[] scale, float[] shift)
    {
        var layer = Emit(node, LayerKind.Affine, [input], x);
        layer.Weights = scale;
        layer.Bias = shift;
    }

    /// <summary>
    /// A constant that broadcasts over <paramref name="x"/> with one value per channel (a scalar, [C,1,1], [1,C,1,1],
    /// or [1,K] for a flat x; a plain [C] when <paramref name="isChannelVector"/>, as BatchNormalization's operands are),
    /// expanded to one value per channel. Constants varying over H or W are unsupported.
    /// </summary>
    private float[] PerChannel(NodeProto node, OnnxTensor constant, ValueShape x, bool isChannelVector = false)
    {
        int channels = x.Flat ? x.Length : x.Channels;
        long[] target = x.Flat ? [1, channels] : [1, channels, 1, 1];
        long[] dims = isChannelVector && constant.Rank == 1 ? [.. target[..1], constant.Dims[0], .. target[2..]] : constant.Dims;
        int offset = target.Length - dims.Length;
        float[] values = constant.AsFloats();
        bool fits = offset >= 0 && dims.Select((d, i) => d == 1 || (i + offset == 1 && d == channels)).All(ok => ok);
        bool variesInsideChannel = x.Flat && x.Height * x.Width > 1 && values.Any(v => v != values[0]);
        if (!fits || variesInsideChannel)
            throw Unsupported(node, $"constant operand {constant} does not broadcast per channel over {x}; supported: a scalar or one value per channel.");
        // A uniform constant over a flattened image is still one value per engine (CHW) channel.
        int engineChannels = x.Flat && x.Height * x.Width > 1 ? x.Channels : channels;
        return values.Length == engineChannels ? (float[])values.Clone() : Enumerable.Repeat(values[0], engineChannels).ToArray();
    }

    private Activation ActivationOf(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        switch (node.OpType)
        {
            case "Relu": return Activation.Relu;
            case "Sigmoid": return Activation.Sigmoid;
            case "HardSwish": return Activation.HardSwish;
            case "HardSigmoid": return Activation.HardSigmoid(attributes.Float("alpha", 0.2f), attributes.Float("beta", 0.5f));
            default: // Clip: bounds are attributes before opset 11 and optional constant inputs from it on
                float min, max;
                if (_file.Opset < 11)
                {
                    min = attributes.Float("min", float.MinValue);
                    max = attributes.Float("max", float.MaxValue);
                }
                else
                {
                    min = ScalarOf(node, OptionalConstant(node, inputs, 1)) ?? float.NegativeInfinity;
                    max = ScalarOf(node, OptionalConstant(node, inputs, 2)) ?? float.PositiveInfinity;
                }
                return min == 0f && max >= float.MaxValue ? Activation.Relu : Activation.Clip(min, max);
        }
    }

    private float? ScalarOf(NodeProto node, OnnxTensor? tensor)
    {
        if (tensor is null) return null;
        if (tensor.Length != 1) throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}): bound {tensor} is not a scalar.");
        return tensor.AsFloats()[0];
    }

    /// <summary>Add/Sub/Mul/Div: two runtime tensors become Add or Multiply, a tensor and a constant a per-channel affine.</summary>
    private void LowerElementwise(NodeProto node, string[] inputs)
    {
        if (inputs.Length != 2) throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}) needs two inputs.");
        bool firstIsValue = _values.ContainsKey(inputs[0]), secondIsValue = _values.ContainsKey(inputs[1]);
        if (firstIsValue && secondIsValue)
        {
            ValueShape a = _values[inputs[0]], b = _values[inputs[1]];
            if (node.OpType == "Add" && a == b)
            {
                Emit(node, LayerKind.Add, [inputs[0], inputs[1]], a);
                return;
            }
            if (node.OpType == "Mul" && (a == b || IsChannelScale(a, b) || IsChannelScale(b, a)))
            {
                bool bIsScale = a == b || IsChannelScale(a, b);
                Emit(node, LayerKind.Multiply, bIsScale ? [inputs[0], inputs[1]] : [inputs[1], inputs[0]], bIsScale ? a : b);
                return;
            }
            throw Unsupported(node, $"{node.OpType} of runtime tensors {a} and {b} is not supported; supported: Add of equal shapes, Mul of equal shapes or by an [N,C,1,1] scale.");
        }
        int valueIndex = firstIsValue ? 0 : 1;
        var x = Value(node, inputs, valueIndex);
        float[] c = PerChannel(node, Constant(node, inputs, 1 - valueIndex), x);
        float[] ones = Enumerable.Repeat(1f, c.Length).ToArray(), zeros = new float[c.Length];
        (float[] scale, float[] shift) = (node.OpType, valueIndex) switch
        {
            ("Add", _) => (ones, c),
            ("Sub", 0) => (ones, Array.ConvertAll(c, v => -v)),
            ("Sub", _) => (Array.ConvertAll(ones, v => -v), c),
            ("Mul", _) => (c, zeros),
            ("Div", 0) => (Array.ConvertAll(c, v => 1f / v), zeros),
            _ => throw Unsupported(node, "dividing a constant by a runtime tensor is not supported."),
        };
        EmitAffine(node, inputs[valueIndex], x, scale, shift);
    }

    /// <summary>True when <paramref name="scale"/> is [C,1,1] and multiplies the spatial tensor <paramref name="x"/> channel by channel.</summary>
    private static bool IsChannelScale(ValueShape x, ValueShape scale) =>
        !x.Flat && !scale.Flat && scale.Channels == x.Channels && scale.Height == 1 && scale.Width == 1;

    private void LowerPad(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        RequireSpatial(node, x);
        string mode = attributes.String("mode", "constant");
        long[] pads;
        float value;
        if (_file.Opset < 11)
        {
            pads = attributes.Ints("pads") ?? throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Pad) has no pads.");
            value = attributes.Float("value", 0f);
        }
        else
        {
            pads = Constant(node, inputs, 1).AsLongs();
            value = ScalarOf(node, OptionalConstant(node, inputs, 2)) ?? 0f;
            if (OptionalConstant(node, inputs, 3) is { } axesTensor)
            {
                long[] axes = axesTensor.AsLongs().Select(a => (long)ConstantFolder.NormalizeAxis(a, 4, node, _file)).ToArray();
                var full = new long[8];
                for (int i = 0; i < axes.Length && 2 * i + 1 < pads.Length + 1; i++)
                {
                    full[axes[i]] = pads[i];
                    full[axes[i] + 4] = pads[i + axes.Length];
                }
                pads = full;
            }
        }
        if (pads.Length != 8)
            throw _file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Pad): {pads.Length} pads for a rank-4 tensor.");
        if (mode != "constant" || value != 0f || pads.Any(p => p < 0 || p > MaxConvExtent) || pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0)
            throw Unsupported(node, $"mode '{mode}', value {value}, pads [{string.Join(",", pads)}] are not supported; supported: constant zero padding of H and W (NCHW).");
        var padding = new Padding((int)pads[2], (int)pads[3], (int)pads[6], (int)pads[7]);
        var layer = Emit(node, LayerKind.Pad, [inputs[0]],
            new ValueShape(x.Channels, x.Height + padding.Top + padding.Bottom, x.Width + padding.Left + padding.Right));
        layer.Padding = padding;
    }

    private void LowerGlobalPool(NodeProto node, string[] inputs, bool keepDims)
    {
        var x = Value(node, inputs, 0);
        RequireSpatial(node, x);
        Emit(node, LayerKind.GlobalAveragePool, [inputs[0]], new ValueShape(x.Channels, 1, 1, Flat: !keepDims));
    }

    private void LowerAveragePool(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        long[] kernel = attributes.Ints("kernel_shape") ?? [];
        bool unpadded = attributes.String("auto_pad", "NOTSET") is "NOTSET" or "VALID" && (attributes.Ints("pads") ?? []).All(p => p == 0);
        if (!unpadded || !kernel.SequenceEqual([x.Height, x.Width]))
            throw Unsupported(node, $"AveragePool with kernel [{string.Join(",", kernel)}] over {x} is not supported; supported: an unpadded pool over the whole image (a global average).");
        LowerGlobalPool(node, inputs, keepDims: true);
    }

    private void LowerReduceMean(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        RequireSpatial(node, x);
        long[] axes = ConstantFolder.Axes(node, inputs.Select(i => i.Length == 0 ? null : _constants.GetValueOrDefault(i)).ToArray(), attributes, _file) ?? [];
        var normalized = axes.Select(a => ConstantFolder.NormalizeAxis(a, 4, node, _file)).Order().ToArray();
        if (!normalized.SequenceEqual([2, 3]))
            throw Unsupported(node, $"ReduceMean over axes [{string.Join(",", axes)}] is not supported; supported: axes [2,3] (a global average pool).");
        LowerGlobalPool(node, inputs, keepDims: attributes.Int("keepdims", 1) != 0);
    }

    /// <summary>Flatten/Reshape/Squeeze/Unsqueeze/Transpose that leave CHW memory as it is become aliases; NHWC input transposes become a layer.</summary>
    private void LowerReshape(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        long[] dims = x.OnnxDims;
        var constants = inputs.Select(i => i.Length == 0 ? null : _constants.GetValueOrDefault(i)).ToArray();
        long[] result;
        switch (node.OpType)
        {
            case "Flatten": result = ConstantFolder.Flatten(dims, (int)attributes.Int("axis", 1), node, _file); break;
            case "Reshape": result = ConstantFolder.ReshapeTarget(dims, Constant(node, inputs, 1).AsLongs(), attributes.Int("allowzero", 0) != 0, node, _file); break;
            case "Squeeze":
                long[]? axes = ConstantFolder.Axes(node, constants, attributes, _file)
                    ?? Enumerable.Range(1, dims.Length - 1).Where(a => dims[a] == 1).Select(a => (long)a).ToArray();
                result = ConstantFolder.Squeeze(dims, axes, node, _file);
                break;
            case "Unsqueeze": result = ConstantFolder.Unsqueeze(dims, ConstantFolder.Axes(node, constants, attributes, _file) ?? [], node, _file); break;
            default:
                long[] perm = attributes.Ints("perm") ?? Enumerable.Range(0, dims.Length).Reverse().Select(a => (long)a).ToArray();
                if (Resolve(inputs[0]) == _graph.InputName && _graph.InputIsHwc && perm is [0, 3, 1, 2])
                {
                    Emit(node, LayerKind.TransposeHwcToChw, [inputs[0]], x);
                    return;
                }
                if (perm.Length != dims.Length || perm.Any(a => a < 0 || a >= dims.Length) || !perm.Where(a => dims[a] != 1).SequenceEqual(Enumerable.Range(0, dims.Length).Where(a => dims[a] != 1).Select(a => (long)a)))
                    throw Unsupported(node, $"Transpose perm [{string.Join(",", perm)}] of {x} moves data; supported: [0,3,1,2] on an NHWC image input, or permutations of size-1 axes.");
                result = perm.Select(a => dims[a]).ToArray();
                break;
        }
        ValueShape shape;
        if (result.Length == 2 && result[0] == 1 && result[1] == x.Length)
            shape = x with { Flat = true };
        else if (result.Length == 4 && result[0] == 1 && result.Skip(1).SequenceEqual([x.Channels, x.Height, x.Width]))
            shape = x with { Flat = false };
        else
            throw Unsupported(node, $"{node.OpType} of {x} to [{string.Join(",", result)}] is not supported; supported: flattening to [N, C*H*W] and reshapes that keep the CHW layout.");
        _values[node.Output[0]] = shape;
        _aliases[node.Output[0]] = Resolve(inputs[0]);
    }

    private void LowerGemm(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        if (!x.Flat && x.Height * x.Width != 1)
            throw Unsupported(node, $"{node.OpType} of {x} is not supported; supported: a [N, K] input (flatten first).");
        var b = Constant(node, inputs, 1);
        bool isGemm = node.OpType == "Gemm";
        if (isGemm && attributes.Int("transA", 0) != 0)
            throw Unsupported(node, "transA = 1 is not supported; supported: transA = 0.");
        bool transB = isGemm && attributes.Int("transB", 0) != 0;
        float alpha = isGemm ? attributes.Float("alpha", 1f) : 1f, beta = isGemm ? attributes.Float("beta", 1f) : 1f;
        int features = x.Length;
        if (b.Rank != 2 || b.Dims[transB ? 1 : 0] != features || !b.IsFloat)
            throw Unsupported(node, $"weights {b} do not fit an input of {features} features; supported: constant [K, M] (or [M, K] with transB) float weights.");
        int outputs = (int)b.Dims[transB ? 0 : 1];
        var weights = new float[outputs * features];
        for (int o = 0; o < outputs; o++)
            for (int k = 0; k < features; k++)
                weights[o * features + k] = alpha * b.Floats![transB ? o * features + k : k * outputs + o];
        var bias = new float[outputs];
        if (isGemm && OptionalConstant(node, inputs, 2) is { } c)
        {
            float[] perOutput = PerChannel(node, c, new ValueShape(outputs, 1, 1, Flat: true), isChannelVector: true);
            for (int o = 0; o < outputs; o++) bias[o] = beta * perOutput[o];
        }
        var layer = Emit(node, LayerKind.Gemm, [inputs[0]], new ValueShape(outputs, 1, 1, Flat: true));
        layer.Weights = weights;
        layer.Bias = bias;
    }

    private void LowerSoftmax(NodeProto node, string[] inputs, NodeAttributes attributes)
    {
        var x = Value(node, inputs, 0);
        long[] dims = x.OnnxDims;
        int axis = ConstantFolder.NormalizeAxis(attributes.Int("axis", _file.Opset < 13 ? 1 : -1), dims.Length, node, _file);
        // Before opset 13 Softmax normalises over all axes from 'axis' on; from 13 over 'axis' alone. The engine
        // normalises over the whole image, so every other non-batch axis the op does not cover must have size 1.
        bool coversImage = axis >= 1 && Enumerable.Range(1, dims.Length - 1)
            .All(a => dims[a] == 1 || a == axis || (_file.Opset < 13 && a > axis));
        if (!coversImage)
            throw Unsupported(node, $"Softmax on axis {axis} of {x} is not supported; supported: a softmax over the class scores ([N, K] or [N, K, 1, 1]).");
        Emit(node, LayerKind.Softmax, [inputs[0]], x);
    }
}
