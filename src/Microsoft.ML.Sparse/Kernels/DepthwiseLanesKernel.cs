using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Depthwise convolution of small planes (late 14x14 / 7x7 layers) with channels in vector lanes: a block of
/// TVec.Count channels is transposed into one zero-padded plane whose pixels are vectors (lane j = channel j), so every
/// tap is a plain vector FMA with the weight vector of the block's channels and no vector lane is wasted on borders or
/// ragged row ends. Any kernel size and stride. Each lane performs exactly the sum of the other paths (bias, then taps in
/// (ky, kx) order), so which block a channel falls in never changes its bits.
/// </summary>
internal static unsafe class DepthwiseLanesKernel
{
    /// <summary>Widest vector, in floats: scratch is sized for it.</summary>
    private const int MaxLanes = 16;

    /// <summary>Pixels whose sums run side by side: each weight vector load serves this many FMAs.</summary>
    private const int PixelBlock = 4;

    /// <summary>
    /// Planes whose rows fill at most half a vector (7x7 under AVX-512): there the per-channel flat run costs more than the
    /// transposes in and out of the lanes (measured; 14x14 is faster flat).
    /// </summary>
    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> => TVec.Count > 1 && 2 * g.OutWidth <= TVec.Count;

    /// <summary>Scratch floats: the padded lane plane, the lane weights and bias, and the lane output (0 for planes never run here).</summary>
    public static int ScratchFloats(in ConvGeometry g) =>
        2 * g.OutWidth > MaxLanes ? 0 : (g.PaddedHeight * g.PaddedWidth + g.Taps + 1 + g.OutHeight * g.OutWidth) * MaxLanes;

    /// <summary>Channels [channelStart, channelEnd), as <see cref="DepthwiseConvKernel.Run{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TVec>(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation, float* scratch) where TVec : struct, IFloatVector<TVec>
    {
        var lanes = new Blocks<TVec>(input, output, weights, bias, g, channelStart, channelEnd, activation, scratch);
        ActivationPass.Dispatch(ref lanes, activation);
    }

    private readonly struct Blocks<TVec>(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation, float* scratch) : IActivationConsumer
        where TVec : struct, IFloatVector<TVec>
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int n = TVec.Count, taps = g.Taps, outPixels = g.OutHeight * g.OutWidth;
            float* plane = scratch, laneWeights = plane + (long)g.PaddedHeight * g.PaddedWidth * n, laneBias = laneWeights + taps * n;
            float* laneOutput = laneBias + n;
            // Padding stays zero: only interior pixels are written below.
            new Span<float>(plane, g.PaddedHeight * g.PaddedWidth * n).Clear();
            // Tap t of output pixel (oy, ox) is plane pixel (oy * sh + ky, ox * sw + kx): a fixed offset from the pixel's window corner.
            int* tapOffsets = stackalloc int[taps];
            for (int ky = 0, t = 0; ky < g.KernelHeight; ky++)
                for (int kx = 0; kx < g.KernelWidth; kx++) tapOffsets[t++] = (ky * g.PaddedWidth + kx) * n;
            int* corners = stackalloc int[outPixels];
            for (int oy = 0, p = 0; oy < g.OutHeight; oy++)
                for (int ox = 0; ox < g.OutWidth; ox++) corners[p++] = (oy * g.StrideHeight * g.PaddedWidth + ox * g.StrideWidth) * n;
            float alpha = activation.Alpha, beta = activation.Beta;
            int inHeight = g.InHeight, inWidth = g.InWidth, paddedWidth = g.PaddedWidth, top = g.Pad.Top, left = g.Pad.Left;

            for (int c0 = channelStart; c0 < channelEnd; c0 += n)
            {
                int count = Math.Min(n, channelEnd - c0);
                for (int j = 0; j < count; j++)
                {
                    TransposeIn(input + (long)(c0 + j) * g.InPlaneStride, inHeight, inWidth, plane + (top * paddedWidth + left) * n + j, paddedWidth * n, n);
                    for (int t = 0; t < taps; t++) laneWeights[t * n + j] = weights[(long)(c0 + j) * taps + t];
                    laneBias[j] = bias[c0 + j];
                }
                // Lanes past the last channel keep the previous block's values: computed, never written out.
                TVec b = TVec.Load(laneBias);
                int p = 0;
                for (; p + PixelBlock <= outPixels; p += PixelBlock)
                {
                    float* s0 = plane + corners[p], s1 = plane + corners[p + 1], s2 = plane + corners[p + 2], s3 = plane + corners[p + 3];
                    TVec a0 = b, a1 = b, a2 = b, a3 = b;
                    for (int t = 0; t < taps; t++)
                    {
                        TVec w = TVec.Load(laneWeights + t * n);
                        int offset = tapOffsets[t];
                        a0 = TVec.MultiplyAdd(TVec.Load(s0 + offset), w, a0);
                        a1 = TVec.MultiplyAdd(TVec.Load(s1 + offset), w, a1);
                        a2 = TVec.MultiplyAdd(TVec.Load(s2 + offset), w, a2);
                        a3 = TVec.MultiplyAdd(TVec.Load(s3 + offset), w, a3);
                    }
                    TFunction.Apply(a0, alpha, beta).Store(laneOutput + p * n);
                    TFunction.Apply(a1, alpha, beta).Store(laneOutput + (p + 1) * n);
                    TFunction.Apply(a2, alpha, beta).Store(laneOutput + (p + 2) * n);
                    TFunction.Apply(a3, alpha, beta).Store(laneOutput + (p + 3) * n);
                }
                for (; p < outPixels; p++)
                {
                    float* s = plane + corners[p];
                    TVec a = b;
                    for (int t = 0; t < taps; t++) a = TVec.MultiplyAdd(TVec.Load(s + tapOffsets[t]), TVec.Load(laneWeights + t * n), a);
                    TFunction.Apply(a, alpha, beta).Store(laneOutput + p * n);
                }
                for (int j = 0; j < count; j++)
                {
                    float* to = output + (long)(c0 + j) * g.OutPlaneStride, from = laneOutput + j;
                    for (int q = 0; q < outPixels; q++, from += n) to[q] = *from;
                }
            }
        }

        /// <summary>One channel's plane into lane j of the lane plane (<paramref name="to"/> points at lane j of its first interior pixel).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void TransposeIn(float* from, int height, int width, float* to, int rowPitch, int n)
        {
            for (int y = 0; y < height; y++, from += width, to += rowPitch)
            {
                float* pixel = to;
                for (int x = 0; x < width; x++, pixel += n) *pixel = from[x];
            }
        }
    }
}
