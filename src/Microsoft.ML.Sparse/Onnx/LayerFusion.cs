namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// Merges lowered layers the way the engine runs them best: zero Pads into the next conv, per-channel affines
/// (BatchNormalization, constant Mul/Add) into the preceding conv or fully connected layer, <c>x * Sigmoid(x)</c> into
/// Swish and <c>x * HardSigmoid(x)</c> into HardSwish, a residual Add into the preceding 1x1 conv, and activations into
/// whatever produced their input. A layer is only merged into its producer when nothing else reads the producer's output.
/// </summary>
internal static class LayerFusion
{
    public static void Fuse(LoweredGraph graph)
    {
        FoldPads(graph);
        FoldAffines(graph);
        RecognizeSwish(graph);
        FuseResidualAdds(graph);
        FuseActivations(graph);
    }

    /// <summary>The layer writing <paramref name="value"/>, if its only reader is one layer (so the value may disappear).</summary>
    private static Layer? SoleProducer(LoweredGraph graph, Dictionary<string, int> consumers, string value)
    {
        if (consumers.GetValueOrDefault(value) != 1) return null;
        return graph.Layers.FirstOrDefault(l => l.Output == value);
    }

    /// <summary>Replaces <paramref name="removed"/> by <paramref name="survivor"/>, which takes over its output name.</summary>
    private static void Merge(LoweredGraph graph, Layer survivor, Layer removed)
    {
        survivor.Output = removed.Output;
        graph.Layers.Remove(removed);
    }

    private static void FoldPads(LoweredGraph graph)
    {
        var consumers = graph.CountConsumers();
        foreach (var pad in graph.Layers.Where(l => l.Kind == LayerKind.Pad).ToList())
        {
            var conv = graph.Layers.FirstOrDefault(l => l.Kind == LayerKind.Conv && l.Inputs[0] == pad.Output);
            if (conv is null || consumers.GetValueOrDefault(pad.Output) != 1) continue;
            var p = pad.Padding;
            var c = conv.Padding;
            conv.Padding = new Padding(p.Top + c.Top, p.Left + c.Left, p.Bottom + c.Bottom, p.Right + c.Right);
            conv.Inputs = [pad.Inputs[0]];
            graph.Layers.Remove(pad);
        }
    }

    /// <summary>activation-free conv/FC followed by x*scale+shift: scale the weight rows and bias instead.</summary>
    private static void FoldAffines(LoweredGraph graph)
    {
        var consumers = graph.CountConsumers();
        foreach (var affine in graph.Layers.Where(l => l.Kind == LayerKind.Affine).ToList())
        {
            var producer = SoleProducer(graph, consumers, affine.Inputs[0]);
            if (producer is not { Kind: LayerKind.Conv or LayerKind.Gemm, Residual: null } || producer.Activation.Kind != ActivationKind.None) continue;
            int outputs = producer.Bias.Length;
            int rowLength = producer.Weights.Length / outputs;
            for (int o = 0; o < outputs; o++)
            {
                float scale = affine.Weights[o];
                foreach (ref float w in producer.Weights.AsSpan(o * rowLength, rowLength)) w *= scale;
                producer.Bias[o] = producer.Bias[o] * scale + affine.Bias[o];
            }
            Merge(graph, producer, affine);
        }
    }

    /// <summary>Mul(x, Sigmoid(x)) is Swish; Mul(x, HardSigmoid(x)) with alpha 1/6, beta 1/2 is HardSwish.</summary>
    private static void RecognizeSwish(LoweredGraph graph)
    {
        var consumers = graph.CountConsumers();
        foreach (var multiply in graph.Layers.Where(l => l.Kind == LayerKind.Multiply).ToList())
        {
            for (int gate = 0; gate < 2; gate++)
            {
                string x = multiply.Inputs[1 - gate];
                var sigmoid = SoleProducer(graph, consumers, multiply.Inputs[gate]);
                if (sigmoid is not { Kind: LayerKind.Activation } || sigmoid.Inputs[0] != x) continue;
                Activation? fused = sigmoid.Activation switch
                {
                    { Kind: ActivationKind.Sigmoid } => Activation.Swish,
                    { Kind: ActivationKind.HardSigmoid, Alpha: var a, Beta: var b } when MathF.Abs(a - 1f / 6f) < 1e-6f && MathF.Abs(b - 0.5f) < 1e-6f => Activation.HardSwish,
                    _ => null,
                };
                if (fused is null) continue;
                sigmoid.Activation = fused.Value;
                Merge(graph, sigmoid, multiply);
                break;
            }
        }
    }

    /// <summary>Add(conv1x1(x), r) becomes the 1x1 conv's residual input when r is computed before the conv.</summary>
    private static void FuseResidualAdds(LoweredGraph graph)
    {
        var consumers = graph.CountConsumers();
        foreach (var add in graph.Layers.Where(l => l.Kind == LayerKind.Add).ToList())
        {
            for (int side = 0; side < 2; side++)
            {
                var conv = SoleProducer(graph, consumers, add.Inputs[side]);
                string residual = add.Inputs[1 - side];
                if (conv is not { IsPointwise: true, Residual: null } || conv.Activation.Kind != ActivationKind.None) continue;
                int convIndex = graph.Layers.IndexOf(conv);
                bool residualReady = residual == graph.InputName || graph.Layers.FindIndex(l => l.Output == residual) is int i && i >= 0 && i < convIndex;
                if (!residualReady) continue;
                conv.Residual = residual;
                conv.Activation = add.Activation;
                Merge(graph, conv, add);
                break;
            }
        }
    }

    /// <summary>An activation layer merges into the layer producing its input; two clamps in a row merge into one.</summary>
    private static void FuseActivations(LoweredGraph graph)
    {
        var consumers = graph.CountConsumers();
        foreach (var activation in graph.Layers.Where(l => l.Kind == LayerKind.Activation).ToList())
        {
            var producer = SoleProducer(graph, consumers, activation.Inputs[0]);
            if (producer is not { Kind: LayerKind.Conv or LayerKind.Gemm or LayerKind.Affine or LayerKind.Add or LayerKind.Activation }) continue;
            if (Compose(producer.Activation, activation.Activation) is not { } combined) continue;
            producer.Activation = combined;
            Merge(graph, producer, activation);
        }
    }

    /// <summary>The single activation equal to <paramref name="second"/> after <paramref name="first"/>, when there is one.</summary>
    private static Activation? Compose(Activation first, Activation second)
    {
        if (first.Kind == ActivationKind.None) return second;
        if (second.Kind == ActivationKind.None) return first;
        if (AsClamp(first) is not var (a, b) || AsClamp(second) is not var (c, d)) return null;
        // clamp(clamp(x, a, b), c, d) == clamp(x, clamp(a, c, d), clamp(b, c, d)) for a <= b and c <= d.
        float low = Math.Clamp(a, c, d), high = Math.Clamp(b, c, d);
        return high >= float.MaxValue && low == 0f ? Activation.Relu : Activation.Clip(low, high);

        static (float Min, float Max)? AsClamp(Activation activation) => activation.Kind switch
        {
            ActivationKind.Relu => (0f, float.PositiveInfinity),
            ActivationKind.Clip when activation.Alpha <= activation.Beta => (activation.Alpha, activation.Beta),
            _ => null,
        };
    }
}
