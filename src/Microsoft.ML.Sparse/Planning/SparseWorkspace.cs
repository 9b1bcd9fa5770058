namespace Microsoft.ML.Sparse;

/// <summary>Per-caller scratch state of a <see cref="SparseNetwork"/>: activation buffers and worker threads. Not thread-safe; dispose to stop workers.</summary>
public sealed class SparseWorkspace : IDisposable
{
    private SparseWorkspace() { }

    /// <inheritdoc/>
    public void Dispose() => throw new NotImplementedException();
}
