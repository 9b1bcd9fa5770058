using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Depthwise convolution of small planes (7x7 under AVX-512) at stride 1 with "same" width padding, straight from the
/// input: with output and input rows equally wide, tap (ky, kx) of output pixel f (row-major over the plane) is input pixel
/// f + (ky - Top) x W + (kx - Left), one fixed offset per tap. Each output vector is then one masked load and one FMA per
/// tap, the masks (built once per call) zeroing the lanes whose tap falls in the padding or past the plane, and masked
/// loads never touch those lanes' memory. No copies, no transposes. Sums bias, then taps in (ky, kx) order, as every path.
/// </summary>
internal static unsafe class DepthwiseFlatKernel
{
    /// <summary>Output planes of at most this many vectors (7x7 = 49 pixels in four).</summary>
    private const int MaxVectors = 4;

    /// <summary>Kernels up to 5x5.</summary>
    private const int MaxTaps = 25;

    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> =>
        MaskedVector.Supported<TVec>() && g.StrideHeight == 1 && g.StrideWidth == 1 &&
        g.OutWidth == g.InWidth && g.OutHeight * g.OutWidth <= MaxVectors * 16 && g.Taps <= MaxTaps;

    /// <summary>Channels [channelStart, channelEnd), as <see cref="DepthwiseConvKernel.Run{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation)
    {
        var planes = new Planes(input, output, weights, bias, g, channelStart, channelEnd, activation);
        ActivationPass.Dispatch(ref planes, activation);
    }

    private readonly struct Planes(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation) : IActivationConsumer
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int taps = g.Taps, pixels = g.OutHeight * g.OutWidth, vectors = (pixels + 15) / 16, width = g.InWidth;
            // masks[t * MaxVectors + v]: lanes of output vector v whose tap t lies inside the input plane.
            Vector512<float>* masks = stackalloc Vector512<float>[MaxTaps * MaxVectors];
            int* offsets = stackalloc int[MaxTaps];
            for (int ky = 0, t = 0; ky < g.KernelHeight; ky++)
                for (int kx = 0; kx < g.KernelWidth; kx++, t++)
                {
                    offsets[t] = (ky - g.Pad.Top) * width + kx - g.Pad.Left;
                    // All four vectors get masks (those past the plane all zero), so the loop below runs four chains always.
                    for (int v = 0; v < MaxVectors; v++)
                    {
                        Vector512<int> f = Vector512<int>.Indices + Vector512.Create(16 * v);
                        Vector512<int> y = Vector512.Create(0), x = f;
                        // Row and column of each lane without a vector division: at most 16 subtractions of the row width.
                        for (int row = 0; row < g.OutHeight; row++)
                        {
                            Vector512<int> past = Vector512.GreaterThanOrEqual(x, Vector512.Create(width));
                            x -= past & Vector512.Create(width);
                            y -= past;
                        }
                        Vector512<int> iy = y + Vector512.Create(ky - g.Pad.Top), ix = x + Vector512.Create(kx - g.Pad.Left);
                        Vector512<int> inside = Vector512.LessThan(f, Vector512.Create(pixels)) &
                            Vector512.GreaterThanOrEqual(iy, Vector512<int>.Zero) & Vector512.LessThan(iy, Vector512.Create(g.InHeight)) &
                            Vector512.GreaterThanOrEqual(ix, Vector512<int>.Zero) & Vector512.LessThan(ix, Vector512.Create(width));
                        masks[t * MaxVectors + v] = inside.AsSingle();
                    }
                }

            float alpha = activation.Alpha, beta = activation.Beta;
            int inStride = g.InPlaneStride, outStride = g.OutPlaneStride;
            // Whole vectors may be stored where the output plane has room for them (padded planes; never past a band of rows,
            // whose next rows another band writes); otherwise the last is masked (which costs more).
            bool wholeStores = g.OutPlaneRoom >= vectors * 16;
            Vector512<float> lastStoreMask = Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(16 * (vectors - 1)), Vector512.Create(pixels)).AsSingle();
            for (int c = channelStart; c < channelEnd; c += 2)
            {
                // Two channels at a time share each tap's masks; a lone last channel is computed twice into the same place.
                int d = Math.Min(c + 1, channelEnd - 1);
                float* plane = input + (long)c * inStride, w = weights + (long)c * taps, to = output + (long)c * outStride;
                nint nextInput = (nint)(d - c) * inStride, nextWeights = (nint)(d - c) * taps, nextOutput = (nint)(d - c) * outStride;
                // Four independent FMA chains per channel (one per output vector), so the taps do not wait on FMA latency.
                Vector512<float> a0 = Vector512.Create(bias[c]), a1 = a0, a2 = a0, a3 = a0;
                Vector512<float> b0 = Vector512.Create(bias[d]), b1 = b0, b2 = b0, b3 = b0;
                for (int t = 0; t < taps; t++)
                {
                    float* at = plane + offsets[t], bt = at + nextInput;
                    Vector512<float> weight = Vector512.Create(w[t]), secondWeight = Vector512.Create(w[nextWeights + t]);
                    Vector512<float>* mask = masks + t * MaxVectors;
                    Vector512<float> m = mask[0];
                    a0 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(at, m, Vector512<float>.Zero), weight, a0);
                    b0 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(bt, m, Vector512<float>.Zero), secondWeight, b0);
                    m = mask[1];
                    a1 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(at + 16, m, Vector512<float>.Zero), weight, a1);
                    b1 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(bt + 16, m, Vector512<float>.Zero), secondWeight, b1);
                    m = mask[2];
                    a2 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(at + 32, m, Vector512<float>.Zero), weight, a2);
                    b2 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(bt + 32, m, Vector512<float>.Zero), secondWeight, b2);
                    m = mask[3];
                    a3 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(at + 48, m, Vector512<float>.Zero), weight, a3);
                    b3 = Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(bt + 48, m, Vector512<float>.Zero), secondWeight, b3);
                }
                Store<TFunction>(a0, to, 0, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(a1, to, 1, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(a2, to, 2, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(a3, to, 3, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(b0, to + nextOutput, 0, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(b1, to + nextOutput, 1, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(b2, to + nextOutput, 2, vectors, wholeStores, lastStoreMask, alpha, beta);
                Store<TFunction>(b3, to + nextOutput, 3, vectors, wholeStores, lastStoreMask, alpha, beta);
            }
        }

        /// <summary>Output vector <paramref name="v"/> through the activation; the last one masked unless the plane has room.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store<TFunction>(Vector512<float> sum, float* to, int v, int vectors, bool wholeStores, Vector512<float> lastMask, float alpha, float beta)
            where TFunction : struct, IActivationFunction
        {
            if (v >= vectors) return;
            Vector512<float> result = Unsafe.BitCast<Float512, Vector512<float>>(TFunction.Apply(Unsafe.BitCast<Vector512<float>, Float512>(sum), alpha, beta));
            if (v < vectors - 1 || wholeStores) result.Store(to + 16 * v);
            else Avx512F.MaskStore(to + 16 * v, lastMask, result);
        }
    }
}
