namespace Microsoft.ML.Sparse;

/// <summary>What the plan decided for one layer: shapes, sparsity, kernel and work.</summary>
/// <param name="Name">Layer name (the ONNX node name when imported).</param>
/// <param name="Kind">Layer kind, e.g. "Conv", "Depthwise", "Pointwise", "FullyConnected", "GlobalAveragePool".</param>
/// <param name="Input">Input shape (first input).</param>
/// <param name="Output">Output shape.</param>
/// <param name="Sparsity">Fraction of zero weights (0 for layers without weights).</param>
/// <param name="Kernel">The kernel chosen, e.g. "SpMM block 4 (Vector512)" or "dense 1x1".</param>
/// <param name="DenseMacs">Multiply-accumulates the layer would cost dense.</param>
/// <param name="ExecutedMacs">Multiply-accumulates the chosen kernel performs.</param>
public sealed record LayerInfo(string Name, string Kind, TensorHandle Input, TensorHandle Output, float Sparsity, string Kernel, long DenseMacs, long ExecutedMacs);
