using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// A Conv, Gemm or MatMul node and its constant weight: the initializer(s) behind it, its role, and how its flat values
/// map to (output channel, inner position) so that blocks of output channels can be pruned together.
/// </summary>
internal sealed class WeightLayer
{
    public required NodeProto Node { get; init; }

    public required WeightLayerKind Kind { get; init; }

    /// <summary>One initializer, or weight_orig and weight_mask of a torch.nn.utils.prune Mul (the weight is their product).</summary>
    public required IReadOnlyList<StoredWeight> Factors { get; init; }

    public required long[] Shape { get; init; }

    /// <summary>Output channels, and the distance between consecutive ones in the flat array.</summary>
    public required int OutChannels { get; init; }

    public required int OutStride { get; init; }

    /// <summary>Weights per output channel (input channels x kernel taps), and the distance between consecutive ones.</summary>
    public required int InnerCount { get; init; }

    public required int InnerStride { get; init; }

    /// <summary>Why the weight cannot be pruned at all (it is not a float initializer), or null.</summary>
    public string? Unreadable { get; init; }

    /// <summary>The constant bias, one value per output channel (Conv input 2, Gemm input C), or null.</summary>
    public StoredWeight? Bias { get; init; }

    /// <summary>How much of a shift of W x reaches the bias term: alpha / beta for Gemm, 1 for Conv.</summary>
    public double BiasScale { get; init; } = 1;

    /// <summary>The node's data input (the activations the weight multiplies).</summary>
    public string InputName => Node.Input[0];

    public string Name => OnnxModelFile.NodeName(Node);

    /// <summary>The initializer's name, or "orig * mask" for a product.</summary>
    public string WeightName => string.Join(" * ", Factors.Select(factor => factor.Name));

    /// <summary>The effective weight (the product of the factors).</summary>
    public float[] Read(OnnxModelFile file)
    {
        float[] values = Factors[0].Read(file);
        for (int f = 1; f < Factors.Count; f++)
        {
            float[] factor = Factors[f].Read(file);
            for (int i = 0; i < values.Length; i++) values[i] *= factor[i];
        }
        return values;
    }

    /// <summary>Zeroes the pruned positions in the mask factor when there is one (a 0/1 tensor), else in every factor;
    /// returns a note for the report saying where the zeros went (empty for a plain weight).</summary>
    public string WriteZeros(OnnxModelFile file, float[] pruned)
    {
        if (Factors.Count == 1)
        {
            Factors[0].Write(pruned);
            return "";
        }
        var factorValues = Factors.Select(factor => factor.Read(file)).ToArray();
        int mask = Array.FindIndex(factorValues, values => Array.TrueForAll(values, v => v is 0f or 1f));
        for (int f = 0; f < Factors.Count; f++)
        {
            if (mask >= 0 && f != mask) continue;
            float[] values = factorValues[f];
            for (int i = 0; i < values.Length; i++) if (pruned[i] == 0f) values[i] = 0f;
            Factors[f].Write(values);
        }
        return mask >= 0 ? $"product pruned; zeros written to the 0/1 mask '{Factors[mask].Name}'" : "product pruned; zeros written to both factors (neither is a 0/1 mask)";
    }

    /// <summary>Stores new effective weight values (pruned ones zero): into the single initializer, or for a product into
    /// the non-mask factor, zeroing the 0/1 mask where pruned.</summary>
    public void WriteValues(OnnxModelFile file, float[] values)
    {
        if (Factors.Count == 1)
        {
            Factors[0].Write(values);
            return;
        }
        var factorValues = Factors.Select(factor => factor.Read(file)).ToArray();
        int mask = Array.FindIndex(factorValues, v => Array.TrueForAll(v, x => x is 0f or 1f));
        int carrier = mask == 0 ? 1 : 0;
        float[] other = factorValues[1 - carrier];
        float[] carried = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            // Pruned and originally zero products stay zero; the other factor keeps its value, the carrier takes the rest.
            if (values[i] != 0f && other[i] != 0f) carried[i] = values[i] / other[i];
            if (values[i] == 0f && mask >= 0) other[i] = 0f;
        }
        Factors[carrier].Write(carried);
        if (mask >= 0) Factors[mask].Write(other);
    }

    /// <summary>Every Conv, Gemm and MatMul of the graph whose weight is a constant (or could not be traced), in node order.</summary>
    public static List<WeightLayer> FindAll(OnnxModelFile file)
    {
        var graph = file.Graph;
        var dense = graph.Initializer.GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.Last());
        var sparse = graph.SparseInitializer.Where(s => s.Values is not null).GroupBy(s => s.Values.Name).ToDictionary(g => g.Key, g => g.Last());
        var producers = new Dictionary<string, NodeProto>();
        foreach (var node in graph.Node)
            foreach (string output in node.Output) producers[output] = node;

        // Follows Identity chains to an initializer; a Mul of two same-shaped initializers is torch's weight_orig * weight_mask.
        List<StoredWeight>? Resolve(string name, out string? producedBy)
        {
            producedBy = null;
            for (int hops = 0; hops <= graph.Node.Count; hops++)
            {
                if (dense.TryGetValue(name, out var tensor)) return [StoredWeight.Dense(tensor)];
                if (sparse.TryGetValue(name, out var sparseTensor)) return [StoredWeight.Sparse(sparseTensor)];
                if (!producers.TryGetValue(name, out var node)) return null;
                producedBy = node.OpType;
                if (node.OpType == "Identity" && node.Input.Count == 1) { name = node.Input[0]; continue; }
                if (node.OpType == "Mul" && node.Input.Count == 2)
                {
                    var left = Resolve(node.Input[0], out _);
                    var right = Resolve(node.Input[1], out _);
                    if (left is [var a] && right is [var b] && a.Dims.SequenceEqual(b.Dims)) return [a, b];
                }
                return null;
            }
            return null;
        }

        var layers = new List<WeightLayer>();
        foreach (var node in graph.Node)
        {
            if (node.OpType is not ("Conv" or "Gemm" or "MatMul") || node.Input.Count < 2) continue;
            var factors = Resolve(node.Input[1], out string? producedBy);
            if (factors is null)
            {
                // A MatMul of two activations is no weight layer; a Conv or Gemm fed by a computed weight is worth a line.
                if (node.OpType == "MatMul" && producedBy is null) continue;
                layers.Add(Untraced(node, producedBy is null ? "its weight is a graph input, not an initializer" : $"its weight is computed by a {producedBy} node, not stored as an initializer"));
                continue;
            }
            string? unsupported = factors.Select(f => f.UnsupportedReason).FirstOrDefault(reason => reason is not null);
            var layer = Describe(node, factors, unsupported is null ? null : "its weight has " + unsupported);
            if (layer.Unreadable is null && node.OpType != "MatMul" && node.Input.Count > 2 && Resolve(node.Input[2], out _) is [var bias]
                && bias.UnsupportedReason is null && bias.Dims.Aggregate(1L, (p, d) => p * d) == layer.OutChannels && bias.Dims.Count(d => d != 1) <= 1)
            {
                double alpha = node.Attribute.FirstOrDefault(a => a.Name == "alpha")?.F ?? 1f, beta = node.Attribute.FirstOrDefault(a => a.Name == "beta")?.F ?? 1f;
                layer = layer.WithBias(bias, node.OpType == "Gemm" ? (beta == 0 ? double.NaN : alpha / beta) : 1);
            }
            layers.Add(layer);
        }

        // The classifier is the last weight layer of the graph.
        if (layers.Count > 0 && layers[^1].Kind is WeightLayerKind.Pointwise or WeightLayerKind.FullyConnected or WeightLayerKind.FullConvolution)
            layers[^1] = layers[^1].WithKind(WeightLayerKind.Classifier);
        return layers;
    }

    private WeightLayer WithKind(WeightLayerKind kind) => new()
    {
        Node = Node, Kind = kind, Factors = Factors, Shape = Shape, OutChannels = OutChannels, OutStride = OutStride,
        InnerCount = InnerCount, InnerStride = InnerStride, Unreadable = Unreadable, Bias = Bias, BiasScale = BiasScale,
    };

    private WeightLayer WithBias(StoredWeight bias, double scale) => new()
    {
        Node = Node, Kind = Kind, Factors = Factors, Shape = Shape, OutChannels = OutChannels, OutStride = OutStride,
        InnerCount = InnerCount, InnerStride = InnerStride, Unreadable = Unreadable, Bias = double.IsFinite(scale) ? bias : null, BiasScale = scale,
    };

    private static WeightLayer Untraced(NodeProto node, string reason) => new()
    {
        Node = node, Kind = node.OpType == "Conv" ? WeightLayerKind.FullConvolution : WeightLayerKind.FullyConnected,
        Factors = [], Shape = [], OutChannels = 0, OutStride = 0, InnerCount = 0, InnerStride = 0, Unreadable = reason,
    };

    private static WeightLayer Describe(NodeProto node, List<StoredWeight> factors, string? unreadable)
    {
        long[] shape = factors[0].Dims;
        if (node.OpType == "Conv")
        {
            if (shape.Length < 3) return Untraced(node, $"its weight has rank {shape.Length}; a Conv weight has rank 3 or more");
            long group = node.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1;
            bool pointwise = shape.Skip(2).All(dim => dim == 1);
            var kind = group == 1 ? pointwise ? WeightLayerKind.Pointwise : WeightLayerKind.FullConvolution
                : shape[1] == 1 ? WeightLayerKind.Depthwise : WeightLayerKind.GroupedConvolution;
            int inner = checked((int)(shape.Aggregate(1L, (p, d) => p * d) / Math.Max(1, shape[0])));
            return new()
            {
                Node = node, Kind = kind, Factors = factors, Shape = shape, Unreadable = unreadable,
                OutChannels = (int)shape[0], OutStride = inner, InnerCount = inner, InnerStride = 1,
            };
        }

        if (shape.Length != 2) return Untraced(node, $"its weight has rank {shape.Length}; only 2-D Gemm/MatMul weights are pruned");
        // Gemm with transB = 1 stores [N, K] (output-major); MatMul and plain Gemm store [K, N] (input-major).
        bool outputMajor = node.OpType == "Gemm" && (node.Attribute.FirstOrDefault(a => a.Name == "transB")?.I ?? 0) != 0;
        int rows = (int)shape[0], columns = (int)shape[1];
        return new()
        {
            Node = node, Kind = WeightLayerKind.FullyConnected, Factors = factors, Shape = shape, Unreadable = unreadable,
            OutChannels = outputMajor ? rows : columns, OutStride = outputMajor ? columns : 1,
            InnerCount = outputMajor ? columns : rows, InnerStride = outputMajor ? 1 : columns,
        };
    }
}
