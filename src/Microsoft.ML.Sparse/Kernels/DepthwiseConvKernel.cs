namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Depthwise convolution (one filter per channel) over CHW, any kernel size, stride and explicit padding.</summary>
internal static unsafe class DepthwiseConvKernel
{
    /// <summary>Scratch floats one call needs: the phase planes of one channel.</summary>
    public static int ScratchFloats(in ConvGeometry g) => g.ScratchFloats(1);

    /// <summary>
    /// Channels [channelStart, channelEnd): <c>output[c] = activation(bias[c] + conv(input[c], weights[c]))</c>,
    /// weights <c>[C, KernelHeight, KernelWidth]</c>; <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats.
    /// </summary>
    public static void Run<TVec>(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation, float* scratch) where TVec : struct, IFloatVector<TVec>
    {
        int taps = g.Taps, outHeight = g.OutHeight, outWidth = g.OutWidth;
        float** tapRows = stackalloc float*[taps];
        float* rowScratch = scratch + g.PlaneFloats;
        for (int c = channelStart; c < channelEnd; c++)
        {
            ConvPlanes.Build(input + (long)c * g.InHeight * g.InWidth, g, scratch, rowScratch);
            float* outputPlane = output + (long)c * outHeight * outWidth;
            for (int oy = 0; oy < outHeight; oy++)
            {
                ConvPlanes.FillTaps(tapRows, scratch, g, 1, oy);
                TapRow.Run<TVec>(tapRows, taps, weights + (long)c * taps, bias[c], outputPlane + (long)oy * outWidth, outWidth, activation);
            }
        }
    }
}
