namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Full (groups = 1) convolution over CHW for the first layer of a network (few input channels): each output row is a sum
/// over (input channel, ky, kx) taps of contiguous phase-plane rows, four output channels at a time.
/// </summary>
internal static unsafe class DirectConvKernel
{
    /// <summary>Scratch floats one call needs: the phase planes of every input channel.</summary>
    public static int ScratchFloats(in ConvGeometry g, int inChannels) => g.ScratchFloats(inChannels);

    /// <summary>
    /// Output channels [channelStart, channelEnd) of <c>activation(bias + conv(input, weights))</c>, weights OIHW
    /// <c>[Cout, inChannels, KernelHeight, KernelWidth]</c>; <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats.
    /// </summary>
    public static void Run<TVec>(float* input, float* output, float* weights, float* bias, in ConvGeometry g, int inChannels,
        int channelStart, int channelEnd, in Activation activation, float* scratch) where TVec : struct, IFloatVector<TVec>
    {
        int taps = inChannels * g.Taps, outHeight = g.OutHeight, outWidth = g.OutWidth;
        long planeFloats = g.PlaneFloats, outputPlane = (long)outHeight * outWidth;
        float* rowScratch = scratch + inChannels * planeFloats;
        for (int ci = 0; ci < inChannels; ci++)
            ConvPlanes.Build(input + (long)ci * g.InHeight * g.InWidth, g, scratch + ci * planeFloats, rowScratch);

        float** tapRows = stackalloc float*[taps];
        ConvPlanes.FillTaps(tapRows, scratch, g, inChannels);
        for (int oy = 0; oy < outHeight; oy++, ConvPlanes.Advance(tapRows, taps, g.PhaseWidth))
        {
            int oc = channelStart;
            for (; oc + 4 <= channelEnd; oc += 4)
                TapRow.RunFour<TVec>(tapRows, taps, weights + (long)oc * taps, bias + oc, output + oc * outputPlane + (long)oy * outWidth, outputPlane, outWidth);
            for (; oc < channelEnd; oc++)
                TapRow.Run<TVec>(tapRows, taps, weights + (long)oc * taps, bias[oc], output + oc * outputPlane + (long)oy * outWidth, outWidth);
            for (oc = channelStart; oc < channelEnd; oc++)
            {
                float* row = output + oc * outputPlane + (long)oy * outWidth;
                ActivationPass.Apply<TVec>(row, row, outWidth, activation);
            }
        }
    }
}
