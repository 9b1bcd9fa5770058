using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Full (groups = 1) convolution over CHW for the first layer of a network (few input channels): each output row is a sum
/// over (input channel, ky, kx) taps of contiguous phase-plane rows, four output channels at a time.
/// </summary>
internal static unsafe class DirectConvKernel
{
    /// <summary>Most (input channel, ky, kx) taps supported: their row pointers live on the stack.</summary>
    public const int MaxTaps = 2048;

    /// <summary>Scratch floats one call needs: the phase planes of every input channel.</summary>
    public static int ScratchFloats(in ConvGeometry g, int inChannels) => g.ScratchFloats(inChannels);

    /// <summary>
    /// Output rows [rowStart, rowEnd) of every output channel of <c>activation(bias + conv(input, weights))</c>, weights OIHW
    /// <c>[Cout, inChannels, KernelHeight, KernelWidth]</c>; <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats.
    /// Only the input rows those output rows read are copied into the planes, so threads splitting rows share no work.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TVec>(float* input, float* output, float* weights, float* bias, in ConvGeometry g, int inChannels, int outChannels,
        int rowStart, int rowEnd, in Activation activation, float* scratch) where TVec : struct, IFloatVector<TVec>
    {
        if (rowStart >= rowEnd) return;
        int taps = inChannels * g.Taps, outWidth = g.OutWidth;
        long planeFloats = g.PlaneFloats, outputPlane = g.OutPlaneStride;
        float* rowScratch = scratch + inChannels * planeFloats;
        (int paddedStart, int paddedEnd) = ConvPlanes.PaddedRows(g, rowStart, rowEnd);
        ConvPlanes.Clear(scratch, g, inChannels, paddedStart, paddedEnd);
        for (int ci = 0; ci < inChannels; ci++)
            ConvPlanes.Build(input + (long)ci * g.InPlaneStride, g, scratch + ci * planeFloats, rowScratch, paddedStart, paddedEnd);

        float** tapRows = stackalloc float*[taps];
        ConvPlanes.FillTaps(tapRows, scratch, g, inChannels);
        ConvPlanes.Advance(tapRows, taps, (long)rowStart * g.PhaseWidth);
        var rows = new OutputRows<TVec>(tapRows, taps, weights, bias, output, outChannels, outWidth, outputPlane, g.PhaseWidth, rowStart, rowEnd, activation);
        ActivationPass.Dispatch(ref rows, activation);
    }

    /// <summary>The output rows of every output channel, four channels at a time, then the odd channels, the activation fused in every store.</summary>
    private readonly struct OutputRows<TVec>(float** tapRows, int taps, float* weights, float* bias, float* output, int outChannels, int outWidth,
        long outputPlane, int pitch, int rowStart, int rowEnd, Activation activation) : IActivationConsumer where TVec : struct, IFloatVector<TVec>
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            float alpha = activation.Alpha, beta = activation.Beta;
            for (int oy = rowStart; oy < rowEnd; oy++, ConvPlanes.Advance(tapRows, taps, pitch))
            {
                int oc = 0;
                for (; oc + 4 <= outChannels; oc += 4)
                    TapRow.RunFour<TVec, TFunction>(tapRows, taps, weights + (long)oc * taps, bias + oc, output + oc * outputPlane + (long)oy * outWidth, outputPlane, outWidth, alpha, beta);
                for (; oc < outChannels; oc++)
                    TapRow.Run<TVec, TFunction>(tapRows, taps, weights + (long)oc * taps, bias[oc], output + oc * outputPlane + (long)oy * outWidth, outWidth, alpha, beta);
            }
        }
    }
}
