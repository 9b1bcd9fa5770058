namespace Microsoft.ML.Sparse;

/// <summary>
/// A planned, immutable CHW network. <see cref="Run"/> is thread-safe as long as each concurrent caller passes its own
/// <see cref="SparseWorkspace"/>; one inference allocates nothing on the managed heap.
/// </summary>
public sealed class SparseNetwork
{
    private SparseNetwork() { }

    /// <summary>Input shape, CHW.</summary>
    public TensorHandle InputShape => throw new NotImplementedException();

    /// <summary>Output shape, CHW.</summary>
    public TensorHandle OutputShape => throw new NotImplementedException();

    /// <summary>The layers in execution order, with the plan's decisions.</summary>
    public IReadOnlyList<LayerInfo> Layers => throw new NotImplementedException();

    /// <summary>The options the network was planned with.</summary>
    public SparseNetworkOptions Options => throw new NotImplementedException();

    /// <summary>Allocates the activation buffers (and worker threads, when Threads &gt; 1) for one concurrent caller.</summary>
    public SparseWorkspace CreateWorkspace() => throw new NotImplementedException();

    /// <summary>Runs one image: <paramref name="input"/> has <c>InputShape.Length</c> floats, <paramref name="output"/> receives <c>OutputShape.Length</c>.</summary>
    public void Run(ReadOnlySpan<float> input, Span<float> output, SparseWorkspace workspace) => throw new NotImplementedException();

    /// <summary>A table of layers, shapes, sparsity, chosen kernel and dense vs executed MACs.</summary>
    public string Describe() => throw new NotImplementedException();
}
