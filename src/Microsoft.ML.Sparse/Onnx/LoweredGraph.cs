namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// Shape of a runtime value for one image. The engine keeps every tensor as CHW; a value the graph has flattened to
/// <c>[N, C*H*W]</c> keeps its CHW buffer and is marked <see cref="Flat"/> (flattening is a no-op on CHW memory).
/// </summary>
internal readonly record struct ValueShape(int Channels, int Height, int Width, bool Flat = false)
{
    public int Length => Channels * Height * Width;

    /// <summary>The ONNX dims with a batch of one: [1, C, H, W], or [1, C*H*W] when flat.</summary>
    public long[] OnnxDims => Flat ? [1, Length] : [1, Channels, Height, Width];

    public override string ToString() => $"[{string.Join(",", OnnxDims)}]";
}

/// <summary>The engine operations the importer lowers ONNX nodes to, before fusion.</summary>
internal enum LayerKind
{
    /// <summary>Convolution with OIHW weights; <see cref="Layer.Group"/> is 1 or the channel count (depthwise).</summary>
    Conv,
    /// <summary>Fully connected over the flattened input, weights [out, in].</summary>
    Gemm,
    /// <summary>Per-channel <c>x * Scale + Shift</c> (BatchNormalization, or Mul/Add/Sub/Div by a constant).</summary>
    Affine,
    /// <summary>Zero padding of the spatial dims; folded into the next conv when it can be.</summary>
    Pad,
    GlobalAveragePool,
    Add,
    /// <summary>Elementwise product, or a [C,H,W] tensor times a [C,1,1] one.</summary>
    Multiply,
    Activation,
    Softmax,
    TransposeHwcToChw,
}

/// <summary>One lowered operation. Mutable so the fusion passes can merge neighbours in place.</summary>
internal sealed class Layer(LayerKind kind, string name, string opType, string[] inputs, string output, ValueShape outputShape)
{
    public LayerKind Kind { get; } = kind;

    /// <summary>The ONNX node name (first output when unnamed), reported in errors and Describe.</summary>
    public string Name { get; } = name;

    public string OpType { get; } = opType;

    /// <summary>Runtime value names read by the layer (weights are held below, not here).</summary>
    public string[] Inputs { get; set; } = inputs;

    public string Output { get; set; } = output;

    public ValueShape OutputShape { get; } = outputShape;

    /// <summary>Conv: OIHW weights; Gemm: [out, in]; Affine: per-channel scale.</summary>
    public float[] Weights { get; set; } = [];

    /// <summary>Conv/Gemm bias, or Affine shift; one per output channel.</summary>
    public float[] Bias { get; set; } = [];

    public int Group { get; set; } = 1;

    public int KernelHeight { get; set; } = 1;

    public int KernelWidth { get; set; } = 1;

    public int StrideHeight { get; set; } = 1;

    public int StrideWidth { get; set; } = 1;

    public Padding Padding { get; set; }

    public Activation Activation { get; set; }

    /// <summary>A value added before the activation (a fused residual Add of a 1x1 conv).</summary>
    public string? Residual { get; set; }

    /// <summary>A 1x1, stride-1, unpadded, ungrouped convolution: the engine's Pointwise (SpMM) layer.</summary>
    public bool IsPointwise => Kind == LayerKind.Conv && Group == 1 && KernelHeight == 1 && KernelWidth == 1
        && StrideHeight == 1 && StrideWidth == 1 && Padding == default;

    public override string ToString() => $"{Kind} {Name} ({string.Join(", ", Inputs)}) -> {Output} {OutputShape}"
        + (Activation.Kind != ActivationKind.None ? $" +{Activation}" : "") + (Residual is null ? "" : $" +residual {Residual}");
}

/// <summary>The lowered network: its input, layers in execution order and output.</summary>
internal sealed class LoweredGraph(string inputName, long[] inputDims, bool inputIsHwc, ValueShape inputShape)
{
    /// <summary>Name of the ONNX graph input.</summary>
    public string InputName { get; } = inputName;

    /// <summary>The input dims as the file declares them, batch and dynamic dims resolved (batch 1).</summary>
    public long[] InputDims { get; } = inputDims;

    /// <summary>True when the model reads NHWC images and transposes them first.</summary>
    public bool InputIsHwc { get; } = inputIsHwc;

    /// <summary>The input as the engine sees it, CHW.</summary>
    public ValueShape InputShape { get; } = inputShape;

    public List<Layer> Layers { get; } = [];

    public string OutputName { get; set; } = "";

    /// <summary>The name of the runtime value the graph output is (after Identity aliases are resolved).</summary>
    public string OutputValue { get; set; } = "";

    public ValueShape OutputShape { get; set; }

    /// <summary>Number of layers (plus the graph output) that read each value.</summary>
    public Dictionary<string, int> CountConsumers()
    {
        var counts = new Dictionary<string, int> { [OutputValue] = 1 };
        foreach (var layer in Layers)
            foreach (string input in layer.Inputs.Append(layer.Residual).OfType<string>())
                counts[input] = counts.GetValueOrDefault(input) + 1;
        return counts;
    }

    public override string ToString() => string.Join(Environment.NewLine, Layers);
}
