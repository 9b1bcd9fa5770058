namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// Turns a fused <see cref="LoweredGraph"/> into engine layers on a <see cref="SparseNetworkBuilder"/>, handing it the
/// graph's 1x1 and fully connected weight arrays (the graph is dropped once the network is built).
/// </summary>
internal static class NetworkEmitter
{
    public static SparseNetwork Emit(LoweredGraph graph, SparseNetworkOptions options, CancellationToken cancellationToken)
    {
        var input = graph.InputShape;
        var builder = new SparseNetworkBuilder(input.Channels, input.Height, input.Width);
        var tensors = new Dictionary<string, TensorHandle> { [graph.InputName] = builder.Input };
        foreach (var layer in graph.Layers)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TensorHandle x = tensors[layer.Inputs[0]];
            tensors[layer.Output] = layer.Kind switch
            {
                LayerKind.Conv => EmitConv(builder, layer, x, layer.Residual is null ? null : tensors[layer.Residual]),
                LayerKind.Gemm => builder.FullyConnectedOwned(x, layer.Weights, layer.Bias, layer.Bias.Length, layer.Activation, layer.Name),
                // A per-channel affine, or a bare zero pad, is a depthwise 1x1 convolution with the scale as its weights.
                LayerKind.Affine => builder.DepthwiseConv(x, layer.Weights, layer.Bias, 1, 1, activation: layer.Activation, name: layer.Name),
                LayerKind.Pad => builder.DepthwiseConv(x, Enumerable.Repeat(1f, x.Channels).ToArray(), new float[x.Channels], 1, 1,
                    padding: layer.Padding, name: layer.Name),
                LayerKind.GlobalAveragePool => builder.GlobalAveragePool(x, layer.Name),
                LayerKind.Add => builder.Add(x, tensors[layer.Inputs[1]], layer.Activation, layer.Name),
                LayerKind.Multiply => builder.Multiply(x, tensors[layer.Inputs[1]], layer.Name),
                LayerKind.Activation => builder.Activate(x, layer.Activation, layer.Name),
                LayerKind.Softmax => builder.Softmax(x, layer.Name),
                LayerKind.TransposeHwcToChw => builder.TransposeHwcToChw(x),
                _ => throw new InvalidOperationException($"Unexpected layer kind {layer.Kind}."),
            };
        }
        return builder.Build(tensors[graph.OutputValue], options);
    }

    private static TensorHandle EmitConv(SparseNetworkBuilder builder, Layer layer, TensorHandle x, TensorHandle? residual)
    {
        if (layer.IsPointwise)
            return builder.PointwiseOwned(x, layer.Weights, layer.Bias, layer.Bias.Length, layer.Activation, residual, layer.Name);
        if (residual is not null) throw new InvalidOperationException($"Layer {layer.Name}: only 1x1 convolutions take a residual.");
        return layer.Group == 1
            ? builder.Conv(x, layer.Weights, layer.Bias, layer.Bias.Length, layer.KernelHeight, layer.KernelWidth,
                layer.StrideHeight, layer.StrideWidth, layer.Padding, layer.Activation, layer.Name)
            : builder.DepthwiseConv(x, layer.Weights, layer.Bias, layer.KernelHeight, layer.KernelWidth,
                layer.StrideHeight, layer.StrideWidth, layer.Padding, layer.Activation, layer.Name);
    }
}
