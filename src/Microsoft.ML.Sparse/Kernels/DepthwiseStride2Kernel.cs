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

    /// <summary>5x5 output rows up to this many vectors (any MobileNet-family plane from 224 down).</summary>
    private const int MaxVectors5x5 = 8;

    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> =>
        MaskedVector.Supported<TVec>() && g.StrideHeight == 2 && g.StrideWidth == 2 &&
        ((g.KernelHeight == 3 && g.KernelWidth == 3 && g.OutWidth <= MaxVectors * 16) || (g.KernelHeight == 5 && g.KernelWidth == 5 && g.OutWidth <= MaxVectors5x5 * 16));

    /// <summary>Channels [channelStart, channelEnd), as <see cref="DepthwiseConvKernel.Run{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation)
    {
        if (g.KernelHeight == 5)
        {
            var columns = new Columns5x5(input, output, weights, bias, g, channelStart, channelEnd, activation);
            ActivationPass.Dispatch(ref columns, activation);
            return;
        }
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

        /// <summary>Output vector <paramref name="v"/> of a row <paramref name="outWidth"/> wide (the last shifted back to end at the row's end).</summary>
        public static ColumnLoads For(int v, int outWidth, in ConvGeometry g)
        {
            int x0 = outWidth >= 16 ? Math.Min(16 * v, outWidth - 16) : 0, first = 2 * x0 - g.Pad.Left;
            return new ColumnLoads(x0, first, Taps3x3.ColumnsInRow(first, g.InWidth), Taps3x3.ColumnsInRow(first + 16, g.InWidth), Taps3x3.ColumnsInRow(first + 32, g.InWidth));
        }
    }

    /// <summary>
    /// Where one output vector of the 3x3 path reads its rows when the left padding is 0 or 1: two loads from input column
    /// 2 x0 (a multiple of 32 on 112-wide rows, so on 64-byte lines when the row is) split into even and odd columns, and
    /// the one column the window takes beyond them (2 x0 - 1 with padding 1, 2 x0 + 32 without) as a broadcast, slid in
    /// with one valignd. The three unaligned loads per row this replaces each crossed a cache line.
    /// </summary>
    private readonly struct PairLoads(int outputColumn, int start, bool inside, Vector512<float> low, Vector512<float> high, int edge, bool edgeInRow)
    {
        public readonly int OutputColumn = outputColumn, Start = start, Edge = edge;
        public readonly bool Inside = inside, EdgeInRow = edgeInRow;
        public readonly Vector512<float> Low = low, High = high;

        public static PairLoads For(int v, int outWidth, in ConvGeometry g)
        {
            int x0 = outWidth >= 16 ? Math.Min(16 * v, outWidth - 16) : 0, start = 2 * x0;
            int edge = g.Pad.Left == 1 ? start - 1 : start + 32;
            return new PairLoads(x0, start, start + 32 <= g.InWidth, Taps3x3.ColumnsInRow(start, g.InWidth), Taps3x3.ColumnsInRow(start + 16, g.InWidth),
                edge, (uint)edge < (uint)g.InWidth);
        }
    }

    private readonly struct Rows(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation) : IActivationConsumer
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int outWidth = g.OutWidth, outHeight = g.OutHeight, vectors = (outWidth + 15) / 16;
            // Output vector v starts at column 16 v, the last one shifted back to end at the row's end (it recomputes a few
            // outputs to the same bits); a row narrower than a vector is one masked store. Left padding 0 or 1 (every
            // exporter's) reads rows as PairLoads, any other as three masked loads from the window's first column.
            bool paired = g.Pad.Left <= 1, padded = g.Pad.Left == 1;
            ColumnLoads* loads = stackalloc ColumnLoads[MaxVectors];
            PairLoads* pairs = stackalloc PairLoads[MaxVectors];
            for (int v = 0; v < vectors; v++)
            {
                loads[v] = ColumnLoads.For(v, outWidth, g);
                pairs[v] = PairLoads.For(v, outWidth, g);
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
                    float* row0 = to + loads[v].OutputColumn;
                    // Output row oy reads input rows 2 oy - Top + ky; its last row (ky = 2) is the next output row's first.
                    Row3<Float512> shared = Load(plane, 0 - g.Pad.Top, g, loads[v], pairs[v], paired, padded);
                    for (int oy = 0; oy < outHeight; oy++)
                    {
                        int y = 2 * oy - g.Pad.Top;
                        Row3<Float512> middle = Load(plane, y + 1, g, loads[v], pairs[v], paired, padded);
                        Row3<Float512> last = Load(plane, y + 2, g, loads[v], pairs[v], paired, padded);
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

        /// <summary>Input row <paramref name="y"/> (zero outside the plane) as the three column taps, the way <paramref name="paired"/> says.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row3<Float512> Load(float* plane, int y, in ConvGeometry g, in ColumnLoads at, in PairLoads pair, bool paired, bool padded)
        {
            if ((uint)y >= (uint)g.InHeight) return default;
            return paired ? LoadPair(plane + (long)y * g.InWidth, pair, padded) : LoadSplit(plane + (long)y * g.InWidth, at);
        }

        /// <summary>The input row at <paramref name="p"/> as the three column taps, from <see cref="PairLoads"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row3<Float512> LoadPair(float* p, in PairLoads at, bool padded)
        {
            Vector512<float> low, high;
            if (at.Inside)
            {
                low = Vector512.Load(p + at.Start);
                high = Vector512.Load(p + at.Start + 16);
            }
            else
            {
                low = Avx512F.MaskLoad(p + at.Start, at.Low, Vector512<float>.Zero);
                high = Avx512F.MaskLoad(p + at.Start + 16, at.High, Vector512<float>.Zero);
            }
            Vector512<float> even = Avx512F.PermuteVar16x32x2(low, EvenColumns, high), odd = Avx512F.PermuteVar16x32x2(low, OddColumns, high);
            Vector512<float> edge = Vector512.Create(at.EdgeInRow ? p[at.Edge] : 0f);
            // Padding 1: columns 2j - 1, 2j, 2j + 1 (the odd ones one lane back, the edge first); padding 0: 2j, 2j + 1,
            // 2j + 2 (the even ones one lane on, the edge last).
            return padded
                ? new Row3<Float512>(Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.AlignRight32(odd.AsUInt32(), edge.AsUInt32(), 15).AsSingle()),
                    Unsafe.BitCast<Vector512<float>, Float512>(even), Unsafe.BitCast<Vector512<float>, Float512>(odd))
                : new Row3<Float512>(Unsafe.BitCast<Vector512<float>, Float512>(even), Unsafe.BitCast<Vector512<float>, Float512>(odd),
                    Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.AlignRight32(edge.AsUInt32(), even.AsUInt32(), 1).AsSingle()));
        }

        /// <summary>The input row at <paramref name="row"/> split into the three column taps by three masked loads from the window's first column.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row3<Float512> LoadSplit(float* row, in ColumnLoads at)
        {
            Split(row + at.First, at, out Vector512<float> even, out Vector512<float> odd, out Vector512<float> next);
            // Columns 2j + 2: the even columns one lane on, the last lane from the column after the two loads.
            Vector512<float> evenNext = Avx512F.AlignRight32(next.AsUInt32(), even.AsUInt32(), 1).AsSingle();
            return new Row3<Float512>(Unsafe.BitCast<Vector512<float>, Float512>(even), Unsafe.BitCast<Vector512<float>, Float512>(odd),
                Unsafe.BitCast<Vector512<float>, Float512>(evenNext));
        }

    }

    /// <summary>Input row y at p (its first column of the vector's window) as its even and odd columns, and the vector after them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Split(float* p, in ColumnLoads at, out Vector512<float> even, out Vector512<float> odd, out Vector512<float> next)
    {
        Vector512<float> low = Avx512F.MaskLoad(p, at.Low, Vector512<float>.Zero);
        Vector512<float> high = Avx512F.MaskLoad(p + 16, at.High, Vector512<float>.Zero);
        next = Avx512F.MaskLoad(p + 32, at.Next, Vector512<float>.Zero);
        even = Avx512F.PermuteVar16x32x2(low, EvenColumns, high);
        odd = Avx512F.PermuteVar16x32x2(low, OddColumns, high);
    }

    private static Vector512<int> EvenColumns
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512<int>.Indices * 2;
    }

    private static Vector512<int> OddColumns
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512<int>.Indices * 2 + Vector512<int>.One;
    }

    /// <summary>Lanes 1..15 of the first source, then lane 0 of the second (columns 2j + 2 from the even ones).</summary>
    private static Vector512<int> OneOn
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512<int>.Indices + Vector512<int>.One;
    }

    /// <summary>Lanes 1..15 of the first source, then lane 1 of the second (columns 2j + 3 from the odd ones).</summary>
    private static Vector512<int> OneOnOdd
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
    }

    /// <summary>Lanes 2..15 of the first source, then lanes 0 and 2 of the second (columns 2j + 4 from the even ones).</summary>
    private static Vector512<int> TwoOn
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18);
    }

    /// <summary>
    /// 5x5: each output vector's column of rows in one sweep down the plane, two channels side by side. Every input row is
    /// loaded and split into its five column taps once (three masked loads, five permutes) and feeds the two or three
    /// output rows whose window covers it: output row m takes padded rows 2m .. 2m + 4, so the pair of rows 2m, 2m + 1
    /// finishes row m - 2, continues m - 1 and starts m; padding rows add nothing and are skipped. Rows narrower than a
    /// vector are one masked store each.
    /// </summary>
    private readonly struct Columns5x5(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation) : IActivationConsumer
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int outWidth = g.OutWidth, vectors = (outWidth + 15) / 16;
            ColumnLoads* loads = stackalloc ColumnLoads[MaxVectors5x5];
            for (int v = 0; v < vectors; v++) loads[v] = ColumnLoads.For(v, outWidth, g);
            Vector512<float> storeMask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(outWidth)).AsSingle();
            for (int c = channelStart; c < channelEnd; c += 2)
            {
                // A lone last channel is computed twice into the same place.
                int d = Math.Min(c + 1, channelEnd - 1);
                float* plane = input + (long)c * g.InPlaneStride, to = output + (long)c * g.OutPlaneStride;
                nint nextInput = (nint)(d - c) * g.InPlaneStride, nextOutput = (nint)(d - c) * g.OutPlaneStride;
                for (int v = 0; v < vectors; v++)
                    Column<TFunction>(plane, nextInput, to, nextOutput, g, loads[v], weights + 25L * c, weights + 25L * d, bias[c], bias[d],
                        storeMask, activation.Alpha, activation.Beta);
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Column<TFunction>(float* plane, nint nextInput, float* to, nint nextOutput, in ConvGeometry g, in ColumnLoads at,
            float* w, float* u, float bias, float secondBias, Vector512<float> storeMask, float alpha, float beta) where TFunction : struct, IActivationFunction
        {
            int outHeight = g.OutHeight, outWidth = g.OutWidth, top = g.Pad.Top;
            bool whole = outWidth >= 16;
            float* p = to + at.OutputColumn;
            Float512 b = Float512.Broadcast(bias), e = Float512.Broadcast(secondBias);
            // older: output row m - 2 after taps rows ky = 0..3; newer: row m - 1 after ky = 0, 1 (t: the second channel).
            Float512 older = b, newer = b, secondOlder = e, secondNewer = e;
            for (int m = 0; m < outHeight + 2; m++)
            {
                Float512 done = older, second = secondOlder;
                int y = 2 * m - top;
                // Padding rows add nothing (x + 0 w = x): the sums only move on.
                if ((uint)(y + DepthwiseStride1Kernel.PrefetchRows + 1) < (uint)g.InHeight)
                {
                    // The two rows this step reads, that many rows on (see DepthwiseStride1Kernel.PrefetchRows).
                    float* ahead = plane + (long)(y + DepthwiseStride1Kernel.PrefetchRows) * g.InWidth + at.First;
                    Prefetch(ahead, nextInput);
                    Prefetch(ahead + g.InWidth, nextInput);
                }
                if ((uint)y < (uint)g.InHeight)
                {
                    Row5<Float512> x = Load(plane, y, g, at), z = Load(plane + nextInput, y, g, at);
                    done = Taps5x5.Fma5(x, w + 20, older);
                    second = Taps5x5.Fma5(z, u + 20, secondOlder);
                    older = Taps5x5.Fma5(x, w + 10, newer);
                    secondOlder = Taps5x5.Fma5(z, u + 10, secondNewer);
                    newer = Taps5x5.Fma5(x, w, b);
                    secondNewer = Taps5x5.Fma5(z, u, e);
                }
                else
                {
                    older = newer;
                    secondOlder = secondNewer;
                    newer = b;
                    secondNewer = e;
                }
                if ((uint)(y + 1) < (uint)g.InHeight)
                {
                    Row5<Float512> x = Load(plane, y + 1, g, at), z = Load(plane + nextInput, y + 1, g, at);
                    older = Taps5x5.Fma5(x, w + 15, older);
                    secondOlder = Taps5x5.Fma5(z, u + 15, secondOlder);
                    newer = Taps5x5.Fma5(x, w + 5, newer);
                    secondNewer = Taps5x5.Fma5(z, u + 5, secondNewer);
                }
                if (m < 2) continue;
                Store(TFunction.Apply(done, alpha, beta), p + (nint)(m - 2) * outWidth, whole, storeMask);
                Store(TFunction.Apply(second, alpha, beta), p + nextOutput + (nint)(m - 2) * outWidth, whole, storeMask);
            }
        }

        /// <summary>The 35 columns one output vector reads of a row, in both channels.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Prefetch(float* row, nint nextInput)
        {
            Sse.Prefetch0(row);
            Sse.Prefetch0(row + 16);
            Sse.Prefetch0(row + 34);
            Sse.Prefetch0(row + nextInput);
            Sse.Prefetch0(row + nextInput + 16);
            Sse.Prefetch0(row + nextInput + 34);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store(Float512 value, float* at, bool whole, Vector512<float> mask)
        {
            if (whole) value.Store(at);
            else Avx512F.MaskStore(at, mask, Unsafe.BitCast<Float512, Vector512<float>>(value));
        }

        /// <summary>Input row <paramref name="y"/> (inside the plane) split into the five column taps 2j + kx.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row5<Float512> Load(float* plane, int y, in ConvGeometry g, in ColumnLoads at)
        {
            Split(plane + (long)y * g.InWidth + at.First, at, out Vector512<float> even, out Vector512<float> odd, out Vector512<float> next);
            return new Row5<Float512>(Unsafe.BitCast<Vector512<float>, Float512>(even), Unsafe.BitCast<Vector512<float>, Float512>(odd),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.PermuteVar16x32x2(even, OneOn, next)),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.PermuteVar16x32x2(odd, OneOnOdd, next)),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.PermuteVar16x32x2(even, TwoOn, next)));
        }
    }
}
