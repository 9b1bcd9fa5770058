namespace Microsoft.ML.Sparse.Formats;

/// <summary>
/// The prepared weights of a 1x1 convolution / fully connected layer <c>W[outChannels, inChannels]</c> plus bias:
/// the sparse blocked format when the layer is sparse enough, the dense matrix otherwise.
/// </summary>
internal sealed class PointwiseWeights
{
    /// <summary>Builds the layer's weights from a dense row-major matrix; chooses sparse vs dense and the block width.</summary>
    public static PointwiseWeights Create(ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int inChannels, float sparseThreshold) =>
        throw new NotImplementedException();

    public int OutChannels => throw new NotImplementedException();
    public int InChannels => throw new NotImplementedException();

    /// <summary>Fraction of exact zeros in W.</summary>
    public float Sparsity => throw new NotImplementedException();

    /// <summary>True when the SpMM path runs.</summary>
    public bool IsSparse => throw new NotImplementedException();

    /// <summary>Channel ranges handed to <see cref="Kernels.PointwiseKernel.Run"/> must start at multiples of this (the block width).</summary>
    public int ChannelGranularity => throw new NotImplementedException();

    /// <summary>Human-readable kernel choice for Describe(), e.g. "SpMM block 4".</summary>
    public string KernelName => throw new NotImplementedException();

    /// <summary>Multiply-accumulates executed per pixel (nonzeros for sparse, Cout*Cin for dense).</summary>
    public long MacsPerPixel => throw new NotImplementedException();
}
