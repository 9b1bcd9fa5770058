namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Depthwise convolution (one filter per channel) over CHW, any kernel size, stride and explicit padding. Each channel is
/// computed as one flat run over its phase planes (so narrow 14x14 / 7x7 planes still fill whole vectors), then the
/// valid columns are copied out.
/// </summary>
internal static unsafe class DepthwiseConvKernel
{
    /// <summary>Scratch floats one call needs: one channel's phase planes and its flat (PhaseWidth-pitched) output, plus a vector of slack.</summary>
    public static int ScratchFloats(in ConvGeometry g) => g.ScratchFloats(1) + g.OutHeight * g.PhaseWidth + 16;

    /// <summary>
    /// Channels [channelStart, channelEnd): <c>output[c] = activation(bias[c] + conv(input[c], weights[c]))</c>,
    /// weights <c>[C, KernelHeight, KernelWidth]</c>; <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats.
    /// </summary>
    public static void Run<TVec>(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation, float* scratch) where TVec : struct, IFloatVector<TVec>
    {
        int taps = g.Taps, outHeight = g.OutHeight, outWidth = g.OutWidth, pitch = g.PhaseWidth;
        float* rowScratch = scratch + g.PlaneFloats;
        float* flat = scratch + g.ScratchFloats(1);
        float** tapSources = stackalloc float*[taps];
        ConvPlanes.FillTaps(tapSources, scratch, g, 1);
        ConvPlanes.Clear(scratch, g, 1, 0, g.PaddedHeight);
        for (int c = channelStart; c < channelEnd; c++)
        {
            ConvPlanes.Build(input + (long)c * g.InHeight * g.InWidth, g, scratch, rowScratch, 0, g.PaddedHeight);
            TapRow.Run<TVec>(tapSources, taps, weights + (long)c * taps, bias[c], flat, outHeight * pitch);
            // The activation moves the valid columns of each flat row into place.
            ActivationPass.ApplyRows<TVec>(flat, pitch, output + (long)c * outHeight * outWidth, outWidth, outHeight, activation);
        }
    }
}
