using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// 3x3 depthwise convolution at stride 1 under AVX-512 on rows at least a vector wide (MobileNet's 112, 56 and 28),
/// straight from the input: for 16 output columns from x0, tap kx reads input columns x0 + kx - Left + j (j = 0..15), one
/// load per tap and input row. Only the vectors at a row's ends are masked loads (zero in the padding or past the row;
/// masked-off lanes are never read); rows above or below the input are zero. Four output rows per pass share each loaded
/// input row (it feeds up to three of them) and run as four independent FMA chains. No phase planes are built and nothing
/// is copied (the general path copies every channel into a zero-padded plane first). Sums bias, then taps in (ky, kx)
/// order, as every path, so the bits are the same.
/// </summary>
internal static unsafe class DepthwiseStride1Kernel
{
    /// <summary>Rows up to this many vectors (256 columns); the column loads live on the stack.</summary>
    private const int MaxVectors = 16;

    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> =>
        MaskedVector.Supported<TVec>() && g.KernelHeight == 3 && g.KernelWidth == 3 &&
        g.StrideHeight == 1 && g.StrideWidth == 1 && g.OutWidth >= 16 && g.OutWidth <= MaxVectors * 16;

    /// <summary>Channels [channelStart, channelEnd), as <see cref="DepthwiseConvKernel.Run{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation)
    {
        var rows = new Rows(input, output, weights, bias, g, channelStart, channelEnd, activation);
        ActivationPass.Dispatch(ref rows, activation);
    }

    /// <summary>
    /// Where one output vector sits and reads its rows: its first output column, the input column its tap kx = 0 starts
    /// at, whether all three taps lie inside the row, and otherwise the lanes inside the row for each tap.
    /// </summary>
    private readonly struct ColumnLoads(int outputColumn, int first, bool inside, Vector512<float> left, Vector512<float> middle, Vector512<float> right)
    {
        public readonly int OutputColumn = outputColumn, First = first;
        public readonly bool Inside = inside;
        public readonly Vector512<float> Left = left, Middle = middle, Right = right;
    }

    private readonly struct Rows(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation) : IActivationConsumer
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int outWidth = g.OutWidth, outHeight = g.OutHeight, vectors = (outWidth + 15) / 16;
            // Output vector v starts at column 16 v, the last one shifted back to end at the row's end (it recomputes a few
            // outputs to the same bits).
            ColumnLoads* loads = stackalloc ColumnLoads[MaxVectors];
            for (int v = 0; v < vectors; v++)
            {
                int x0 = Math.Min(16 * v, outWidth - 16), first = x0 - g.Pad.Left;
                loads[v] = new ColumnLoads(x0, first, first >= 0 && first + 18 <= g.InWidth,
                    Taps3x3.ColumnsInRow(first, g.InWidth), Taps3x3.ColumnsInRow(first + 1, g.InWidth), Taps3x3.ColumnsInRow(first + 2, g.InWidth));
            }
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
            if (at.Inside) return new Row3<Float512>(Float512.Load(p), Float512.Load(p + 1), Float512.Load(p + 2));
            return new Row3<Float512>(
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p, at.Left, Vector512<float>.Zero)),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p + 1, at.Middle, Vector512<float>.Zero)),
                Unsafe.BitCast<Vector512<float>, Float512>(Avx512F.MaskLoad(p + 2, at.Right, Vector512<float>.Zero)));
        }
    }
}
