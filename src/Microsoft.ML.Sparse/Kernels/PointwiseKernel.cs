using Microsoft.ML.Sparse.Formats;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>The 1x1 convolution over CHW activations: SpMM (sparse weights x dense pixels) or the dense path.</summary>
internal static unsafe class PointwiseKernel
{
    /// <summary>
    /// For output channels [channelStart, channelEnd) and pixels [pixelStart, pixelStart + pixelCount):
    /// <c>output[c * pixelStride + p] = activation(sum_k W[c,k] * input[k * pixelStride + p] + bias[c] + residual[c * pixelStride + p])</c>.
    /// <paramref name="residual"/> may be null. Input, output and residual share <paramref name="pixelStride"/> (H*W of the layer).
    /// Never reads or writes outside the given pixel and channel ranges.
    /// </summary>
    public static void Run(PointwiseWeights weights, float* input, float* output, float* residual, int pixelStride,
        int pixelStart, int pixelCount, int channelStart, int channelEnd, in Activation activation, SimdWidth width) =>
        throw new NotImplementedException();
}
