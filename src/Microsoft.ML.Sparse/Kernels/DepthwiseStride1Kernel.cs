using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// 3x3 depthwise convolution at stride 1 under AVX-512 on rows at least a vector wide (MobileNet's 112, 56 and 28),
/// straight from the input: for 16 output columns from x0, tap kx reads input columns x0 + kx - Left + j (j = 0..15). With
/// left padding 1 (every framework's "same" 3x3) that is one load of columns x0..x0+15 and the two edge columns x0 - 1
/// and x0 + 16 broadcast and slid in with <c>valignd</c> (zero where they fall in the padding): three loads from
/// x0 - 1, x0, x0 + 1 put two across cache lines (DepthwiseKernelBenchmarks, side by side: 12x112 32-33 -> 27-28 us,
/// 144x56 129-134 -> 95-107, 48x56 52 -> 34-47, 64x28 15-17 -> 11-16). Otherwise one load per tap and input row, only the
/// vectors at a row's ends masked (zero in the padding or past the row; masked-off lanes are never read). Rows above
/// or below the input are zero. Four output rows per pass share each loaded
/// input row (it feeds up to three of them) and run as four independent FMA chains. No phase planes are built and nothing
/// is copied (the general path copies every channel into a zero-padded plane first). Sums bias, then taps in (ky, kx)
/// order, as every path, so the bits are the same.
/// </summary>
internal static unsafe class DepthwiseStride1Kernel
{
    /// <summary>Rows up to this many vectors (256 columns); the column loads live on the stack.</summary>
    private const int MaxVectors = 16;

    /// <summary>How many rows ahead of the sweep the 5x5 column sweeps prefetch their input rows.</summary>
    internal const int PrefetchRows = 8;

    /// <summary>5x5 rows down to this width: one vector per row with a few lanes idle (narrower planes run flat or in lanes).</summary>
    private const int MinWidth5x5 = 8;

    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> =>
        MaskedVector.Supported<TVec>() && g.StrideHeight == 1 && g.StrideWidth == 1 && g.OutWidth <= MaxVectors * 16 &&
        ((g.KernelHeight == 3 && g.KernelWidth == 3 && g.OutWidth >= 16) || (g.KernelHeight == 5 && g.KernelWidth == 5 && g.OutWidth >= MinWidth5x5));

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
    /// Where one output vector sits and reads its rows: its first output column, the input column its tap kx = 0 starts
    /// at, whether all three taps lie inside the row, and otherwise the lanes inside the row for each tap.
    /// </summary>
    private readonly struct ColumnLoads(int outputColumn, int first, bool inside, Vector512<float> left, Vector512<float> middle, Vector512<float> right,
        bool slides = false, bool leftEdge = false, bool rightEdge = false)
    {
        public readonly int OutputColumn = outputColumn, First = first;
        public readonly bool Inside = inside;
        public readonly Vector512<float> Left = left, Middle = middle, Right = right;
        /// <summary>3x3 with left padding 1: the middle tap is one load inside the row, the outer taps slide one column in.</summary>
        public readonly bool Slides = slides, LeftEdge = leftEdge, RightEdge = rightEdge;

        /// <summary>Output vector <paramref name="v"/> of a row <paramref name="outWidth"/> wide (the last shifted back to end at the row's end, one vector from 0 if the row is narrower), taps from kx = <paramref name="kx"/>.</summary>
        public static ColumnLoads For(int v, int outWidth, in ConvGeometry g, int kx, int kernel)
        {
            int x0 = outWidth >= 16 ? Math.Min(16 * v, outWidth - 16) : 0, first = x0 - g.Pad.Left + kx;
            return new ColumnLoads(x0, first, x0 - g.Pad.Left >= 0 && x0 - g.Pad.Left + 15 + kernel <= g.InWidth,
                Taps3x3.ColumnsInRow(first, g.InWidth), Taps3x3.ColumnsInRow(first + 1, g.InWidth), Taps3x3.ColumnsInRow(first + 2, g.InWidth),
                slides: kernel == 3 && g.Pad.Left == 1 && x0 + 16 <= g.InWidth, leftEdge: x0 >= 1, rightEdge: x0 + 16 < g.InWidth);
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
            // outputs to the same bits).
            ColumnLoads* loads = stackalloc ColumnLoads[MaxVectors];
            for (int v = 0; v < vectors; v++) loads[v] = ColumnLoads.For(v, outWidth, g, kx: 0, kernel: 3);
            float alpha = activation.Alpha, beta = activation.Beta;
            for (int c = channelStart; c < channelEnd; c++)
            {
                float* plane = input + (long)c * g.InPlaneStride, to = output + (long)c * g.OutPlaneStride;
                Taps3x3.Broadcast(weights + 9L * c, bias[c], out Float512 w0, out Float512 w1, out Float512 w2, out Float512 w3, out Float512 w4,
                    out Float512 w5, out Float512 w6, out Float512 w7, out Float512 w8, out Float512 b);
                int oy = 0;
                for (; oy + 4 <= outHeight; oy += 4)
                {
                    // Output rows oy..oy+3 read input rows oy - Top .. oy - Top + 5.
                    int y = oy - g.Pad.Top;
                    for (int v = 0; v < vectors; v++)
                    {
                        ColumnLoads at = loads[v];
                        Row3<Float512> row = Load(plane, y, g, at);
                        Float512 a0 = Taps3x3.Fma3(row, w0, w1, w2, b);
                        row = Load(plane, y + 1, g, at);
                        a0 = Taps3x3.Fma3(row, w3, w4, w5, a0);
                        Float512 a1 = Taps3x3.Fma3(row, w0, w1, w2, b);
                        row = Load(plane, y + 2, g, at);
                        a0 = Taps3x3.Fma3(row, w6, w7, w8, a0);
                        a1 = Taps3x3.Fma3(row, w3, w4, w5, a1);
                        Float512 a2 = Taps3x3.Fma3(row, w0, w1, w2, b);
                        row = Load(plane, y + 3, g, at);
                        a1 = Taps3x3.Fma3(row, w6, w7, w8, a1);
                        a2 = Taps3x3.Fma3(row, w3, w4, w5, a2);
                        Float512 a3 = Taps3x3.Fma3(row, w0, w1, w2, b);
                        row = Load(plane, y + 4, g, at);
                        a2 = Taps3x3.Fma3(row, w6, w7, w8, a2);
                        a3 = Taps3x3.Fma3(row, w3, w4, w5, a3);
                        row = Load(plane, y + 5, g, at);
                        a3 = Taps3x3.Fma3(row, w6, w7, w8, a3);
                        float* store = to + (long)oy * outWidth + at.OutputColumn;
                        TFunction.Apply(a0, alpha, beta).Store(store);
                        TFunction.Apply(a1, alpha, beta).Store(store + outWidth);
                        TFunction.Apply(a2, alpha, beta).Store(store + 2 * outWidth);
                        TFunction.Apply(a3, alpha, beta).Store(store + 3 * outWidth);
                    }
                }
                for (; oy < outHeight; oy++)
                {
                    int y = oy - g.Pad.Top;
                    for (int v = 0; v < vectors; v++)
                    {
                        ColumnLoads at = loads[v];
                        Float512 sum = Taps3x3.Fma3(Load(plane, y, g, at), w0, w1, w2, b);
                        sum = Taps3x3.Fma3(Load(plane, y + 1, g, at), w3, w4, w5, sum);
                        sum = Taps3x3.Fma3(Load(plane, y + 2, g, at), w6, w7, w8, sum);
                        TFunction.Apply(sum, alpha, beta).Store(to + (long)oy * outWidth + at.OutputColumn);
                    }
                }
            }
        }

        /// <summary>Input row <paramref name="y"/> (zero outside the plane) at the three column taps of one output vector.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row3<Float512> Load(float* plane, int y, in ConvGeometry g, in ColumnLoads at)
        {
            if ((uint)y >= (uint)g.InHeight) return default;
            float* p = plane + (long)y * g.InWidth + at.First;
            if (at.Slides)
            {
                // Columns x0 - 1 .. x0 + 16: one load of the 16 in the middle and the two edge columns broadcast and slid in
                // (three loads at x0 - 1, x0, x0 + 1 put two across cache lines).
                Vector512<uint> middle = Vector512.Load(p + 1).AsUInt32();
                Vector512<uint> leftEdge = at.LeftEdge ? Vector512.Create(p[0]).AsUInt32() : default;
                Vector512<uint> rightEdge = at.RightEdge ? Vector512.Create(p[17]).AsUInt32() : default;
                return new Row3<Float512>(
                    Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.AlignRight32(middle, leftEdge, 15).AsSingle()),
                    Unsafe.BitCast<Vector512<float>, Float512>(middle.AsSingle()),
                    Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.AlignRight32(rightEdge, middle, 1).AsSingle()));
            }
            if (at.Inside) return new Row3<Float512>(Float512.Load(p), Float512.Load(p + 1), Float512.Load(p + 2));
            return new Row3<Float512>(
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p, at.Left, Vector512<float>.Zero)),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p + 1, at.Middle, Vector512<float>.Zero)),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p + 2, at.Right, Vector512<float>.Zero)));
        }
    }

    /// <summary>
    /// 5x5: each output vector's column of rows in one sweep down the plane, two channels side by side. Every input row is
    /// loaded once (five column taps) and feeds the five output rows whose window covers it, finishing the oldest: five
    /// sums in flight per channel, ten independent FMA chains; padding rows add nothing and are skipped. Rows narrower than a vector (8-15 columns) are one vector
    /// each, stored whole where the lanes past the row land on the next row (written after it) or on the plane's room,
    /// masked otherwise.
    /// </summary>
    private readonly struct Columns5x5(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation) : IActivationConsumer
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int outWidth = g.OutWidth, vectors = (outWidth + 15) / 16;
            // Per output vector, the masks of taps kx = 0..2 and of kx = 3, 4 (the second's last mask unused).
            ColumnLoads* loads = stackalloc ColumnLoads[2 * MaxVectors];
            for (int v = 0; v < vectors; v++)
            {
                loads[2 * v] = ColumnLoads.For(v, outWidth, g, kx: 0, kernel: 5);
                loads[2 * v + 1] = ColumnLoads.For(v, outWidth, g, kx: 3, kernel: 5);
            }
            var stores = new RowStores(g);
            for (int c = channelStart; c < channelEnd; c += 2)
            {
                // A lone last channel is computed twice into the same place.
                int d = Math.Min(c + 1, channelEnd - 1);
                float* plane = input + (long)c * g.InPlaneStride, to = output + (long)c * g.OutPlaneStride;
                nint nextInput = (nint)(d - c) * g.InPlaneStride, nextOutput = (nint)(d - c) * g.OutPlaneStride;
                for (int v = 0; v < vectors; v++)
                    Column<TFunction>(plane, nextInput, to, nextOutput, g, loads[2 * v], loads[2 * v + 1], weights + 25L * c, weights + 25L * d,
                        bias[c], bias[d], stores, activation.Alpha, activation.Beta);
            }
        }

        /// <summary>
        /// One output vector's column of rows of two channels (the second <paramref name="nextInput"/> / <paramref name="nextOutput"/>
        /// floats on). Padded row r (input row r - Top) finishes output row r - 4 and continues rows r - 3 .. r.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Column<TFunction>(float* plane, nint nextInput, float* to, nint nextOutput, in ConvGeometry g, in ColumnLoads low, in ColumnLoads high,
            float* w, float* u, float bias, float secondBias, in RowStores stores, float alpha, float beta) where TFunction : struct, IActivationFunction
        {
            int outHeight = g.OutHeight, top = g.Pad.Top;
            float* p = to + low.OutputColumn;
            Float512 b = Float512.Broadcast(bias), e = Float512.Broadcast(secondBias);
            // s1..s4: the sums of the output rows 1..4 rows into their window; t1..t4 the second channel's.
            Float512 s1 = b, s2 = b, s3 = b, s4 = b, t1 = e, t2 = e, t3 = e, t4 = e;
            for (int r = 0; r < outHeight + 4; r++)
            {
                Float512 done = s4, second = t4;
                if ((uint)(r - top + PrefetchRows) < (uint)g.InHeight)
                {
                    // Columns are swept down the plane: the hardware prefetcher does not run far enough ahead of this stride.
                    float* ahead = plane + (long)(r - top + PrefetchRows) * g.InWidth + low.First;
                    Sse.Prefetch0(ahead);
                    Sse.Prefetch0(ahead + 20);
                    Sse.Prefetch0(ahead + nextInput);
                    Sse.Prefetch0(ahead + nextInput + 20);
                }
                if ((uint)(r - top) < (uint)g.InHeight)
                {
                    Row5<Float512> x = Load(plane, r - top, g, low, high), y = Load(plane + nextInput, r - top, g, low, high);
                    done = Taps5x5.Fma5(x, w + 20, s4);
                    second = Taps5x5.Fma5(y, u + 20, t4);
                    s4 = Taps5x5.Fma5(x, w + 15, s3);
                    t4 = Taps5x5.Fma5(y, u + 15, t3);
                    s3 = Taps5x5.Fma5(x, w + 10, s2);
                    t3 = Taps5x5.Fma5(y, u + 10, t2);
                    s2 = Taps5x5.Fma5(x, w + 5, s1);
                    t2 = Taps5x5.Fma5(y, u + 5, t1);
                    s1 = Taps5x5.Fma5(x, w, b);
                    t1 = Taps5x5.Fma5(y, u, e);
                }
                else
                {
                    // A padding row adds nothing (x + 0 w = x): the sums only move on.
                    s4 = s3;
                    t4 = t3;
                    s3 = s2;
                    t3 = t2;
                    s2 = s1;
                    t2 = t1;
                    s1 = b;
                    t1 = e;
                }
                if (r < 4) continue;
                stores.Store(TFunction.Apply(done, alpha, beta), p, r - 4);
                stores.Store(TFunction.Apply(second, alpha, beta), p + nextOutput, r - 4);
            }
        }

        /// <summary>Input row <paramref name="y"/> (inside the plane) at the five column taps of one output vector.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Row5<Float512> Load(float* plane, int y, in ConvGeometry g, in ColumnLoads low, in ColumnLoads high)
        {
            float* q = plane + (long)y * g.InWidth + low.First;
            if (low.Inside) return new Row5<Float512>(Float512.Load(q), Float512.Load(q + 1), Float512.Load(q + 2), Float512.Load(q + 3), Float512.Load(q + 4));
            return new Row5<Float512>(Masked(q, low.Left), Masked(q + 1, low.Middle), Masked(q + 2, low.Right), Masked(q + 3, high.Left), Masked(q + 4, high.Middle));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float512 Masked(float* p, Vector512<float> mask) =>
        Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p, mask, Vector512<float>.Zero));

    /// <summary>
    /// Where output row o of one vector goes: whole when the vector's lanes past the row land on later rows or the plane's
    /// room (rows narrower than a vector), masked to the row otherwise.
    /// </summary>
    private readonly struct RowStores(in ConvGeometry g)
    {
        private readonly int _width = g.OutWidth, _wholeRows = g.OutWidth >= 16 ? g.OutHeight : g.OutPlaneRoom < 16 ? 0 : (g.OutPlaneRoom - 16) / g.OutWidth + 1;
        private readonly Vector512<float> _mask = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(g.OutWidth)).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(Float512 value, float* column, int row)
        {
            float* at = column + (nint)row * _width;
            if (row < _wholeRows) value.Store(at);
            else Avx512F.MaskStore(at, _mask, Unsafe.BitCast<Float512, Vector512<float>>(value));
        }
    }
}
