using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// 3x3 depthwise convolution at stride 2 under AVX-512, straight from the input: for 16 output columns from x0, tap kx
/// reads input columns b + 2j + kx (b = 2 x0 - Left, j = 0..15), so each input row is two masked loads of 16 columns
/// (plus one column more), split into its even columns (kx = 0), odd columns (kx = 1) and even columns shifted by one
/// (kx = 2) with two-source permutes in registers. The masks, built once per call, zero the lanes in the padding or past
/// the row, and masked loads never touch those lanes' memory; rows above or below the input are zero. No phase planes
/// are built and nothing is copied (the general path deinterleaves every input row into scratch first: 3x the time).
/// Sums bias, then taps in (ky, kx) order, as every path, so the bits are the same.
/// </summary>
internal static unsafe class DepthwiseStride2Kernel
{
    /// <summary>
    /// Output rows up to four vectors wide (MobileNet's 56, 28, 14 and 7). The 56-wide one (the fused 112 -> 56 layer) once
    /// ran slower this way than the general path's four-row passes; measured again on Zen 4 after the depthwise changes of
    /// the fourth round it is faster: the fused layer 313 -> 261 us (v2 at 90%), 218 -> 191 (v1 at 90%), 322 -> 295 (v1 at 70%).
    /// </summary>
    private const int MaxVectors = 4;

    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> =>
        MaskedVector.Supported<TVec>() && g.KernelHeight == 3 && g.KernelWidth == 3 &&
        g.StrideHeight == 2 && g.StrideWidth == 2 && g.OutWidth <= MaxVectors * 16;

    /// <summary>Channels [channelStart, channelEnd), as <see cref="DepthwiseConvKernel.Run{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation)
    {
        var rows = new Rows(input, output, weights, bias, g, channelStart, channelEnd, activation);
        ActivationPass.Dispatch(ref rows, activation);
    }

    /// <summary>
    /// Where one output vector sits and reads its rows: its first output column, its first input column and the lanes
    /// inside the row for each of the three loads (of the third only lane 0 is used; its other lanes are read only where
    /// they lie in the row).
    /// </summary>
    private readonly struct ColumnLoads(int outputColumn, int first, Vector512<float> low, Vector512<float> high, Vector512<float> next)
    {
        public readonly int OutputColumn = outputColumn, First = first;
        public readonly Vector512<float> Low = low, High = high, Next = next;
    }

    private readonly struct Rows(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation) : IActivationConsumer
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int outWidth = g.OutWidth, outHeight = g.OutHeight, vectors = (outWidth + 15) / 16;
            // Output vector v starts at column 16 v, the last one shifted back to end at the row's end (it recomputes a few
            // outputs to the same bits); a row narrower than a vector is one masked store.
            ColumnLoads* loads = stackalloc ColumnLoads[MaxVectors];
            for (int v = 0; v < vectors; v++)
            {
                int x0 = outWidth >= 16 ? Math.Min(16 * v, outWidth - 16) : 0, first = 2 * x0 - g.Pad.Left;
                loads[v] = new ColumnLoads(x0, first, Taps3x3.ColumnsInRow(first, g.InWidth), Taps3x3.ColumnsInRow(first + 16, g.InWidth), Taps3x3.ColumnsInRow(first + 32, g.InWidth));
            }
            Vector512<float> storeMask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(outWidth)).AsSingle();
            float alpha = activation.Alpha, beta = activation.Beta;
            for (int c = channelStart; c < channelEnd; c++)
            {
                float* plane = input + (long)c * g.InPlaneStride, to = output + (long)c * g.OutPlaneStride;
                Taps3x3.Broadcast(weights + 9L * c, bias[c], out Float512 w0, out Float512 w1, out Float512 w2, out Float512 w3, out Float512 w4,
                    out Float512 w5, out Float512 w6, out Float512 w7, out Float512 w8, out Float512 b);
                for (int v = 0; v < vectors; v++)
                {
                    ColumnLoads at = loads[v];
                    float* row0 = to + at.OutputColumn;
                    // Output row oy reads input rows 2 oy - Top + ky; its last row (ky = 2) is the next output row's first.
                    Row3<Float512> shared = Load(plane, 0 - g.Pad.Top, g, at);
                    for (int oy = 0; oy < outHeight; oy++)
                    {
                        int y = 2 * oy - g.Pad.Top;
                        Row3<Float512> middle = Load(plane, y + 1, g, at), last = Load(plane, y + 2, g, at);
                        Float512 sum = Taps3x3.Fma3(shared, w0, w1, w2, b);
                        sum = Taps3x3.Fma3(middle, w3, w4, w5, sum);
                        sum = Taps3x3.Fma3(last, w6, w7, w8, sum);
                        shared = last;
                        Float512 result = TFunction.Apply(sum, alpha, beta);
                        if (outWidth >= 16) result.Store(row0 + (long)oy * outWidth);
                        else Avx512F.MaskStore(row0 + (long)oy * outWidth, storeMask, Unsafe.BitCast<Float512, Vector512<float>>(result));
                    }
                }
            }
        }

        /// <summary>Input row <paramref name="y"/> (zero outside the plane) split into the three column taps.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row3<Float512> Load(float* plane, int y, in ConvGeometry g, in ColumnLoads at)
        {
            if ((uint)y >= (uint)g.InHeight) return default;
            float* p = plane + (long)y * g.InWidth + at.First;
            Vector512<float> low = Avx512F.MaskLoad(p, at.Low, Vector512<float>.Zero);
            Vector512<float> high = Avx512F.MaskLoad(p + 16, at.High, Vector512<float>.Zero);
            Vector512<float> next = Avx512F.MaskLoad(p + 32, at.Next, Vector512<float>.Zero);
            Vector512<float> even = Avx512F.PermuteVar16x32x2(low, EvenColumns, high);
            Vector512<float> odd = Avx512F.PermuteVar16x32x2(low, OddColumns, high);
            // Columns 2j + 2: the even columns one lane on, the last lane from the column after the two loads.
            Vector512<float> evenNext = Avx512F.AlignRight32(next.AsUInt32(), even.AsUInt32(), 1).AsSingle();
            return new Row3<Float512>(Unsafe.BitCast<Vector512<float>, Float512>(even), Unsafe.BitCast<Vector512<float>, Float512>(odd),
                Unsafe.BitCast<Vector512<float>, Float512>(evenNext));
        }

        private static Vector512<int> EvenColumns => Vector512<int>.Indices * 2;

        private static Vector512<int> OddColumns => Vector512<int>.Indices * 2 + Vector512<int>.One;
    }
}
