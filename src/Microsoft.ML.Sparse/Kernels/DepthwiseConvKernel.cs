using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Depthwise convolution (one filter per channel) over CHW, any kernel size, stride and explicit padding. Planes whose
/// output rows fill at most half a vector (7x7 under AVX-512, from 7x7 or from 14x14 at stride 2), and under AVX-512 5x5
/// stride 1 on rows up to 32 wide, put 16 channels in vector lanes (<see cref="DepthwiseLanesKernel"/>). Under AVX-512,
/// 3x3 and 5x5 read straight from the input with masked loads where they can: stride 2 with output rows up to four (3x3)
/// or eight (5x5) vectors (<see cref="DepthwiseStride2Kernel"/>), stride 1 with rows of one to sixteen vectors, 5x5 also
/// rows of 8-15 columns on planes too tall for the lanes (<see cref="DepthwiseStride1Kernel"/>), 3x3 stride 1 where each
/// zero-padded row is one vector (14x14, in <see cref="Rows3x3{TVec}"/>). Otherwise 3x3 runs <see cref="Rows3x3{TVec}"/> over each channel's
/// zero-padded phase planes (<see cref="ConvPlanes"/>, so borders need no special case), four output rows per pass, and
/// everything else (5x5, other strides) is one flat tap run per channel over its phase planes, then the valid columns
/// are copied out. Activations are fused into the stores.
/// </summary>
internal static unsafe class DepthwiseConvKernel
{
    /// <summary>
    /// Scratch floats one call needs: one channel's phase planes, then its flat (PhaseWidth-pitched) output plus a vector
    /// of slack, or, where a padded row may be one vector (at most 16 floats), a second channel's planes (such rows run
    /// two channels at a time).
    /// </summary>
    public static int ScratchFloats(in ConvGeometry g)
    {
        int afterPlanes = g.OutHeight * g.PhaseWidth + 16;
        if (g.PhaseWidth <= 16) afterPlanes = Math.Max(afterPlanes, g.ScratchFloats(1));
        return Math.Max(g.ScratchFloats(1) + afterPlanes, DepthwiseLanesKernel.ScratchFloats(g));
    }

    /// <summary>
    /// Channels [channelStart, channelEnd): <c>output[c] = activation(bias[c] + conv(input[c], weights[c]))</c>,
    /// weights <c>[C, KernelHeight, KernelWidth]</c>; <paramref name="scratch"/> holds <see cref="ScratchFloats"/> floats.
    /// Every path sums an output as bias, then taps in (ky, kx) order, so all give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TVec>(float* input, float* output, float* weights, float* bias, in ConvGeometry g,
        int channelStart, int channelEnd, in Activation activation, float* scratch) where TVec : struct, IFloatVector<TVec>
    {
        if (channelStart >= channelEnd) return;
        if (DepthwiseLanesKernel.Supports<TVec>(g))
        {
            DepthwiseLanesKernel.Run<TVec>(input, output, weights, bias, g, channelStart, channelEnd, activation, scratch);
            return;
        }
        if (DepthwiseStride2Kernel.Supports<TVec>(g))
        {
            DepthwiseStride2Kernel.Run(input, output, weights, bias, g, channelStart, channelEnd, activation);
            return;
        }
        if (DepthwiseStride1Kernel.Supports<TVec>(g))
        {
            DepthwiseStride1Kernel.Run(input, output, weights, bias, g, channelStart, channelEnd, activation);
            return;
        }
        // 3x3 rows between a half and a whole 512-bit vector wide (14x14): 256-bit rows beat a flat run plus the copy out
        // (measured; 5x5 there is as fast flat).
        if (TVec.Count == 16 && g.OutWidth >= 8 && g.OutWidth < 16 && g.KernelHeight == 3 && g.KernelWidth == 3 && !Rows3x3<TVec>.PaddedRowIsOneVector(g))
        {
            Run<Float256>(input, output, weights, bias, g, channelStart, channelEnd, activation, scratch);
            return;
        }
        ConvPlanes.Clear(scratch, g, 1, 0, g.PaddedHeight);
        if (Rows3x3<TVec>.Supports(g))
        {
            var rows = new Rows3x3<TVec>(input, output, weights, bias, g, channelStart, channelEnd, activation, scratch);
            ActivationPass.Dispatch(ref rows, activation);
            return;
        }

        int taps = g.Taps, outHeight = g.OutHeight, outWidth = g.OutWidth, pitch = g.PhaseWidth;
        float* rowScratch = scratch + g.PlaneFloats;
        float* flat = scratch + g.ScratchFloats(1);
        float** tapSources = stackalloc float*[taps];
        ConvPlanes.FillTaps(tapSources, scratch, g, 1);
        if (outWidth >= TVec.Count)
        {
            var rows = new RowsAnyKernel<TVec>(input, output, weights, bias, g, channelStart, channelEnd, activation, scratch, tapSources);
            ActivationPass.Dispatch(ref rows, activation);
            return;
        }
        for (int c = channelStart; c < channelEnd; c++)
        {
            ConvPlanes.Build(input + (long)c * g.InPlaneStride, g, scratch, rowScratch, 0, g.PaddedHeight);
            TapRow.Run<TVec, IdentityFunction>(tapSources, taps, weights + (long)c * taps, bias[c], flat, outHeight * pitch, 0f, 0f);
            // The activation moves the valid columns of each flat row into place.
            ActivationPass.ApplyRows<TVec>(flat, pitch, output + (long)c * g.OutPlaneStride, outWidth, outHeight, activation);
        }
    }

    /// <summary>
    /// Any kernel and stride (5x5, 7x7, ...) on planes at least a vector wide: output rows straight from the phase planes,
    /// activation fused. Four output rows per pass share each tap's weight broadcast and give four independent FMA chains.
    /// </summary>
    private readonly struct RowsAnyKernel<TVec>(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation, float* scratch, float** tapSources) : IActivationConsumer
        where TVec : struct, IFloatVector<TVec>
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int taps = g.Taps, outHeight = g.OutHeight, outWidth = g.OutWidth, pitch = g.PhaseWidth;
            float* rowScratch = scratch + g.PlaneFloats;
            for (int c = channelStart; c < channelEnd; c++)
            {
                ConvPlanes.Build(input + (long)c * g.InPlaneStride, g, scratch, rowScratch, 0, g.PaddedHeight);
                float* destination = output + (long)c * g.OutPlaneStride;
                int oy = 0;
                for (; oy + 4 <= outHeight; oy += 4)
                    FourRows<TFunction>(tapSources, taps, (long)oy * pitch, pitch, weights + (long)c * taps, bias[c], destination + (long)oy * outWidth, outWidth, activation.Alpha, activation.Beta);
                for (; oy < outHeight; oy++)
                    FourRows<TFunction>(tapSources, taps, (long)oy * pitch, pitch, weights + (long)c * taps, bias[c], destination + (long)oy * outWidth, outWidth, activation.Alpha, activation.Beta, rows: 1);
            }
        }

        /// <summary>
        /// Output rows <c>to + r * outWidth</c>, r &lt; <paramref name="rows"/> (4, or 1 for the last rows), reading tap t at
        /// <c>taps[t] + rowOffset + r * pitch</c>.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void FourRows<TFunction>(float** taps, int tapCount, long rowOffset, int pitch, float* weights, float bias, float* to, int outWidth,
            float alpha, float beta, int rows = 4) where TFunction : struct, IActivationFunction
        {
            int n = TVec.Count;
            if (rows == 1)
            {
                for (int x = 0; x < outWidth; x += n)
                {
                    int at = Math.Min(x, outWidth - n);
                    TVec a = TVec.Broadcast(bias);
                    for (int t = 0; t < tapCount; t++) a = TVec.MultiplyAdd(TVec.Load(taps[t] + rowOffset + at), TVec.Broadcast(weights[t]), a);
                    TFunction.Apply(a, alpha, beta).Store(to + at);
                }
                return;
            }
            for (int x = 0; x < outWidth; x += n)
            {
                int at = Math.Min(x, outWidth - n);
                TVec a0 = TVec.Broadcast(bias), a1 = a0, a2 = a0, a3 = a0;
                for (int t = 0; t < tapCount; t++)
                {
                    float* source = taps[t] + rowOffset + at;
                    TVec w = TVec.Broadcast(weights[t]);
                    a0 = TVec.MultiplyAdd(TVec.Load(source), w, a0);
                    a1 = TVec.MultiplyAdd(TVec.Load(source + pitch), w, a1);
                    a2 = TVec.MultiplyAdd(TVec.Load(source + 2 * pitch), w, a2);
                    a3 = TVec.MultiplyAdd(TVec.Load(source + 3 * pitch), w, a3);
                }
                TFunction.Apply(a0, alpha, beta).Store(to + at);
                TFunction.Apply(a1, alpha, beta).Store(to + outWidth + at);
                TFunction.Apply(a2, alpha, beta).Store(to + 2 * outWidth + at);
                TFunction.Apply(a3, alpha, beta).Store(to + 3 * outWidth + at);
            }
        }
    }

    /// <summary>
    /// 3x3 depthwise, strides 1 or 2 per axis, writing output rows straight from the phase planes with the activation fused.
    /// Four output rows per pass: each loaded input vector feeds every output row whose window covers it (stride 1: 18
    /// loads for 36 FMAs instead of 36), and the four accumulators are independent FMA chains. The ragged end of a row is
    /// one more vector ending at the row's end (recomputing a few outputs to the same bits). Planes narrower than a vector
    /// (14x14 under AVX-512) run as one flat row at the planes' pitch instead, then the valid columns are copied out.
    /// </summary>
    private readonly struct Rows3x3<TVec>(float* input, float* output, float* weights, float* bias, ConvGeometry g,
        int channelStart, int channelEnd, Activation activation, float* scratch) : IActivationConsumer
        where TVec : struct, IFloatVector<TVec>
    {
        public static bool Supports(in ConvGeometry g) =>
            g.KernelHeight == 3 && g.KernelWidth == 3 && g.StrideHeight <= 2 && g.StrideWidth <= 2 &&
            g.OutHeight * g.PhaseWidth >= TVec.Count;

        /// <summary>Stride 1 with each zero-padded row exactly one vector (14x14 with padding 1 under AVX-512).</summary>
        public static bool PaddedRowIsOneVector(in ConvGeometry g) =>
            g.KernelHeight == 3 && g.KernelWidth == 3 && g.StrideHeight == 1 && g.StrideWidth == 1 && g.PhaseWidth == TVec.Count && g.OutHeight >= 2;

        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int outHeight = g.OutHeight, outWidth = g.OutWidth, n = TVec.Count;
            nint pitch = g.PhaseWidth, phaseFloats = g.PhaseFloats;
            // Column taps kx = 1, 2: the odd column phase then the even one a column on (stride 2), or the next columns (stride 1).
            var columns = new ColumnTaps(g.StrideWidth == 1 ? 1 : phaseFloats, g.StrideWidth == 1 ? 2 : 1);
            // Padded row oy * sh + 1 (tap row ky = 1): the next row, or the odd row phase's row oy (stride 2).
            nint oddRow = g.StrideHeight == 1 ? pitch : g.StrideWidth * phaseFloats;
            float alpha = activation.Alpha, beta = activation.Beta;
            // Padded rows ky = 0, 1, 2 of output row oy: oy * pitch plus 0, oddRow, and 2 * pitch (stride 1) or pitch (stride 2).
            nint lastRow = g.StrideHeight == 1 ? 2 * pitch : pitch;
            float* rowScratch = scratch + g.PlaneFloats, flat = scratch + g.ScratchFloats(1);
            if (PaddedRowIsOneVector(g) && MaskedVector.Supported<TVec>())
            {
                // Padded rows straight from the input with masked loads (no copy into the planes at all), two channels at a time.
                for (int c = channelStart; c < channelEnd; c += 2)
                {
                    nint nextInput = c + 1 < channelEnd ? g.InPlaneStride : 0, nextOutput = c + 1 < channelEnd ? g.OutPlaneStride : 0;
                    VectorRows<TFunction, MaskedRows>(new MaskedRows(input + (long)c * g.InPlaneStride, g), nextInput, scratch, weights + 9L * c, bias + c,
                        output + (long)c * g.OutPlaneStride, nextOutput, outHeight, outWidth, alpha, beta);
                }
                return;
            }
            if (PaddedRowIsOneVector(g))
            {
                // Two channels at a time as above, each copied into its own zero-padded plane (the second after the first's scratch).
                float* secondPlane = scratch + g.ScratchFloats(1);
                ConvPlanes.Clear(secondPlane, g, 1, 0, g.PaddedHeight);
                for (int c = channelStart; c < channelEnd; c += 2)
                {
                    bool pair = c + 1 < channelEnd;
                    float* channel = input + (long)c * g.InPlaneStride;
                    ConvPlanes.Build(channel, g, scratch, rowScratch, 0, g.PaddedHeight);
                    if (pair) ConvPlanes.Build(channel + g.InPlaneStride, g, secondPlane, secondPlane + g.PlaneFloats, 0, g.PaddedHeight);
                    VectorRows<TFunction, PlaneRows>(new PlaneRows(scratch), pair ? (nint)(secondPlane - scratch) : 0, scratch, weights + 9L * c, bias + c,
                        output + (long)c * g.OutPlaneStride, pair ? g.OutPlaneStride : 0, outHeight, outWidth, alpha, beta);
                }
                return;
            }
            for (int c = channelStart; c < channelEnd; c++)
            {
                float* w = weights + 9L * c;
                float bc = bias[c];
                float* destination = output + (long)c * g.OutPlaneStride;
                ConvPlanes.Build(input + (long)c * g.InPlaneStride, g, scratch, rowScratch, 0, g.PaddedHeight);
                if (outWidth < n)
                {
                    // Narrow plane: one flat run over all rows at the planes' pitch, then the valid columns moved into place.
                    OneRow<TFunction>(scratch, oddRow, lastRow, columns, w, bc, flat, outHeight * (int)pitch, alpha, beta);
                    ActivationPass.ApplyRows<TVec>(flat, (int)pitch, destination, outWidth, outHeight, default);
                    continue;
                }
                int oy = 0;
                for (; oy + 4 <= outHeight; oy += 4)
                {
                    float* rows = scratch + oy * pitch, to = destination + (long)oy * outWidth;
                    if (g.StrideHeight == 1) FourRowsStride1<TFunction>(rows, pitch, columns, w, bc, to, outWidth, alpha, beta);
                    else FourRowsStride2<TFunction>(rows, pitch, oddRow, columns, w, bc, to, outWidth, alpha, beta);
                }
                for (; oy < outHeight; oy++)
                    OneRow<TFunction>(scratch + oy * pitch, oddRow, lastRow, columns, w, bc, destination + (long)oy * outWidth, outWidth, alpha, beta);
            }
        }

        /// <summary>
        /// One output row of <paramref name="width"/> (at least a vector): tap rows ky = 0, 1, 2 at <paramref name="rows"/>,
        /// + <paramref name="oddRow"/> and + <paramref name="lastRow"/>.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void OneRow<TFunction>(float* rows, nint oddRow, nint lastRow, ColumnTaps columns, float* weights, float bias, float* to, int width, float alpha, float beta)
            where TFunction : struct, IActivationFunction
        {
            Taps3x3.Broadcast(weights, bias, out TVec w0, out TVec w1, out TVec w2, out TVec w3, out TVec w4, out TVec w5, out TVec w6, out TVec w7, out TVec w8, out TVec b);
            for (int x = 0; x < width; x += TVec.Count)
            {
                int at = Math.Min(x, width - TVec.Count);
                float* p = rows + at;
                TVec a = Taps3x3.Fma3(columns.Load(p), w0, w1, w2, b);
                a = Taps3x3.Fma3(columns.Load(p + oddRow), w3, w4, w5, a);
                a = Taps3x3.Fma3(columns.Load(p + lastRow), w6, w7, w8, a);
                TFunction.Apply(a, alpha, beta).Store(to + at);
            }
        }

        /// <summary>
        /// Stride 1 where each padded row is one vector, two channels at a time: every padded row is loaded once at its
        /// three column taps and feeds the three output rows whose window covers it (3 loads per 9 FMAs), with no per-row
        /// calls. One channel's sums wait on a chain of FMAs per padded row; the second channel (<paramref name="nextInput"/>
        /// and <paramref name="nextOutput"/> floats on, its weights and bias next in their arrays) fills that wait. A lone
        /// last channel passes offsets of 0 and is computed twice into the same place. Output rows are stored whole in order, so
        /// the lanes past a row land on the next row's start and are rewritten by its store; the last row goes through
        /// scratch so nothing past the plane is written.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void VectorRows<TFunction, TRows>(TRows rows, nint nextInput, float* scratch, float* weights, float* bias, float* output, nint nextOutput,
            int outHeight, int outWidth, float alpha, float beta) where TFunction : struct, IActivationFunction where TRows : struct, IPaddedRows
        {
            int second = nextInput == 0 ? 0 : 1;
            Taps3x3.Broadcast(weights, bias[0], out TVec w0, out TVec w1, out TVec w2, out TVec w3, out TVec w4, out TVec w5, out TVec w6, out TVec w7, out TVec w8, out TVec b);
            Taps3x3.Broadcast(weights + 9 * second, bias[second], out TVec u0, out TVec u1, out TVec u2, out TVec u3, out TVec u4, out TVec u5, out TVec u6, out TVec u7, out TVec u8, out TVec d);
            // Output row r - 2 is finished by padded row r, r - 1 continued, r started: the same (ky, kx) order as every path.
            TVec older, newer, secondOlder, secondNewer;
            Row3<TVec> v = rows.Load(0, 0), q = rows.Load(0, nextInput);
            newer = Taps3x3.Fma3(v, w0, w1, w2, b);
            secondNewer = Taps3x3.Fma3(q, u0, u1, u2, d);
            v = rows.Load(1, 0);
            q = rows.Load(1, nextInput);
            older = Taps3x3.Fma3(v, w3, w4, w5, newer);
            secondOlder = Taps3x3.Fma3(q, u3, u4, u5, secondNewer);
            newer = Taps3x3.Fma3(v, w0, w1, w2, b);
            secondNewer = Taps3x3.Fma3(q, u0, u1, u2, d);
            for (int r = 2; r < outHeight; r++)
            {
                v = rows.Load(r, 0);
                q = rows.Load(r, nextInput);
                TFunction.Apply(Taps3x3.Fma3(v, w6, w7, w8, older), alpha, beta).Store(output + (r - 2) * (nint)outWidth);
                TFunction.Apply(Taps3x3.Fma3(q, u6, u7, u8, secondOlder), alpha, beta).Store(output + nextOutput + (r - 2) * (nint)outWidth);
                older = Taps3x3.Fma3(v, w3, w4, w5, newer);
                secondOlder = Taps3x3.Fma3(q, u3, u4, u5, secondNewer);
                newer = Taps3x3.Fma3(v, w0, w1, w2, b);
                secondNewer = Taps3x3.Fma3(q, u0, u1, u2, d);
            }
            v = rows.Load(outHeight, 0);
            q = rows.Load(outHeight, nextInput);
            TFunction.Apply(Taps3x3.Fma3(v, w6, w7, w8, older), alpha, beta).Store(output + (outHeight - 2) * (nint)outWidth);
            TFunction.Apply(Taps3x3.Fma3(q, u6, u7, u8, secondOlder), alpha, beta).Store(output + nextOutput + (outHeight - 2) * (nint)outWidth);
            newer = Taps3x3.Fma3(v, w3, w4, w5, newer);
            secondNewer = Taps3x3.Fma3(q, u3, u4, u5, secondNewer);
            v = rows.Load(outHeight + 1, 0);
            q = rows.Load(outHeight + 1, nextInput);
            // The last rows go through scratch past the planes (the row scratch), so their spare lanes stay inside scratch.
            float* last = scratch + (outHeight + 2) * (nint)TVec.Count;
            TFunction.Apply(Taps3x3.Fma3(v, w6, w7, w8, newer), alpha, beta).Store(last);
            TFunction.Apply(Taps3x3.Fma3(q, u6, u7, u8, secondNewer), alpha, beta).Store(last + TVec.Count);
            new ReadOnlySpan<float>(last, outWidth).CopyTo(new Span<float>(output + (outHeight - 1) * (nint)outWidth, outWidth));
            new ReadOnlySpan<float>(last + TVec.Count, outWidth).CopyTo(new Span<float>(output + nextOutput + (outHeight - 1) * (nint)outWidth, outWidth));
        }

        /// <summary>Padded row r of the channel <c>channelOffset</c> floats past the rows' channel, as its three column taps (kx = 0, 1, 2), one vector each.</summary>
        private interface IPaddedRows
        {
            Row3<TVec> Load(int r, nint channelOffset);
        }

        /// <summary>Rows of the zero-padded plane <see cref="ConvPlanes.Build"/> wrote (one vector per row).</summary>
        private readonly struct PlaneRows(float* plane) : IPaddedRows
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Row3<TVec> Load(int r, nint channelOffset)
            {
                float* p = plane + channelOffset + r * (nint)TVec.Count;
                return new Row3<TVec>(TVec.Load(p), TVec.Load(p + 1), TVec.Load(p + 2));
            }
        }

        /// <summary>
        /// Rows read straight from the input channel with AVX-512 masked loads: lane j of tap kx is input column
        /// j + kx - Left when that lies in the row, else zero, and masked-off lanes are never read (no fault, no copy).
        /// Rows above or below the input are zero.
        /// </summary>
        private readonly struct MaskedRows : IPaddedRows
        {
            private readonly float* _channel;
            private readonly int _width, _height, _top, _left;
            private readonly Vector512<float> _mask0, _mask1, _mask2;

            public MaskedRows(float* channel, in ConvGeometry g)
            {
                _channel = channel;
                _width = g.InWidth;
                _height = g.InHeight;
                _top = g.Pad.Top;
                _left = g.Pad.Left;
                _mask0 = Taps3x3.ColumnsInRow(-_left, _width);
                _mask1 = Taps3x3.ColumnsInRow(1 - _left, _width);
                _mask2 = Taps3x3.ColumnsInRow(2 - _left, _width);
            }

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Row3<TVec> Load(int r, nint channelOffset)
            {
                int y = r - _top;
                if ((uint)y >= (uint)_height) return new Row3<TVec>(TVec.Zero, TVec.Zero, TVec.Zero);
                float* p = _channel + channelOffset + (nint)y * _width - _left;
                return new Row3<TVec>(
                    Unsafe.BitCast<Vector512<float>, TVec>(Avx512F.MaskLoad(p, _mask0, Vector512<float>.Zero)),
                    Unsafe.BitCast<Vector512<float>, TVec>(Avx512F.MaskLoad(p + 1, _mask1, Vector512<float>.Zero)),
                    Unsafe.BitCast<Vector512<float>, TVec>(Avx512F.MaskLoad(p + 2, _mask2, Vector512<float>.Zero)));
            }
        }

        /// <summary>
        /// Stride-1 rows: padded rows 0..5 from <paramref name="rows"/>, one pitch apart; output row r sums rows r, r+1, r+2.
        /// Each stride has its own method (not inlined), so the JIT's inlining budget covers every helper in the loop.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void FourRowsStride1<TFunction>(float* rows, nint pitch, ColumnTaps columns, float* weights, float bias, float* output, int outWidth, float alpha, float beta)
            where TFunction : struct, IActivationFunction
        {
            Taps3x3.Broadcast(weights, bias, out TVec w0, out TVec w1, out TVec w2, out TVec w3, out TVec w4, out TVec w5, out TVec w6, out TVec w7, out TVec w8, out TVec b);
            for (int x = 0; x < outWidth; x += TVec.Count)
            {
                int at = Math.Min(x, outWidth - TVec.Count);
                float* p = rows + at, to = output + at;
                Row3<TVec> v = columns.Load(p);
                TVec a0 = Taps3x3.Fma3(v, w0, w1, w2, b);
                v = columns.Load(p += pitch);
                a0 = Taps3x3.Fma3(v, w3, w4, w5, a0);
                TVec a1 = Taps3x3.Fma3(v, w0, w1, w2, b);
                v = columns.Load(p += pitch);
                a0 = Taps3x3.Fma3(v, w6, w7, w8, a0);
                a1 = Taps3x3.Fma3(v, w3, w4, w5, a1);
                TVec a2 = Taps3x3.Fma3(v, w0, w1, w2, b);
                v = columns.Load(p += pitch);
                a1 = Taps3x3.Fma3(v, w6, w7, w8, a1);
                a2 = Taps3x3.Fma3(v, w3, w4, w5, a2);
                TVec a3 = Taps3x3.Fma3(v, w0, w1, w2, b);
                v = columns.Load(p += pitch);
                a2 = Taps3x3.Fma3(v, w6, w7, w8, a2);
                a3 = Taps3x3.Fma3(v, w3, w4, w5, a3);
                v = columns.Load(p + pitch);
                a3 = Taps3x3.Fma3(v, w6, w7, w8, a3);
                Store<TFunction>(a0, a1, a2, a3, to, outWidth, alpha, beta);
            }
        }

        /// <summary>
        /// Stride-2 rows: padded row 2j is row j of the even row phase (from <paramref name="rows"/>), 2j + 1 row j of the odd one
        /// (<paramref name="oddRow"/> further); output row r sums padded rows 2r, 2r+1, 2r+2.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void FourRowsStride2<TFunction>(float* rows, nint pitch, nint oddRow, ColumnTaps columns, float* weights, float bias, float* output, int outWidth, float alpha, float beta)
            where TFunction : struct, IActivationFunction
        {
            Taps3x3.Broadcast(weights, bias, out TVec w0, out TVec w1, out TVec w2, out TVec w3, out TVec w4, out TVec w5, out TVec w6, out TVec w7, out TVec w8, out TVec b);
            for (int x = 0; x < outWidth; x += TVec.Count)
            {
                int at = Math.Min(x, outWidth - TVec.Count);
                float* p = rows + at, to = output + at;
                TVec a0 = Taps3x3.Fma3(columns.Load(p), w0, w1, w2, b);
                a0 = Taps3x3.Fma3(columns.Load(p + oddRow), w3, w4, w5, a0);
                Row3<TVec> v = columns.Load(p += pitch);
                a0 = Taps3x3.Fma3(v, w6, w7, w8, a0);
                TVec a1 = Taps3x3.Fma3(v, w0, w1, w2, b);
                a1 = Taps3x3.Fma3(columns.Load(p + oddRow), w3, w4, w5, a1);
                v = columns.Load(p += pitch);
                a1 = Taps3x3.Fma3(v, w6, w7, w8, a1);
                TVec a2 = Taps3x3.Fma3(v, w0, w1, w2, b);
                a2 = Taps3x3.Fma3(columns.Load(p + oddRow), w3, w4, w5, a2);
                v = columns.Load(p += pitch);
                a2 = Taps3x3.Fma3(v, w6, w7, w8, a2);
                TVec a3 = Taps3x3.Fma3(v, w0, w1, w2, b);
                a3 = Taps3x3.Fma3(columns.Load(p + oddRow), w3, w4, w5, a3);
                a3 = Taps3x3.Fma3(columns.Load(p + pitch), w6, w7, w8, a3);
                Store<TFunction>(a0, a1, a2, a3, to, outWidth, alpha, beta);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store<TFunction>(TVec a0, TVec a1, TVec a2, TVec a3, float* to, int outWidth, float alpha, float beta)
            where TFunction : struct, IActivationFunction
        {
            TFunction.Apply(a0, alpha, beta).Store(to);
            TFunction.Apply(a1, alpha, beta).Store(to + outWidth);
            TFunction.Apply(a2, alpha, beta).Store(to + 2 * outWidth);
            TFunction.Apply(a3, alpha, beta).Store(to + 3 * outWidth);
        }

        /// <summary>Where column taps kx = 1 and 2 sit relative to kx = 0 in the phase planes.</summary>
        private readonly struct ColumnTaps(nint middle, nint right)
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            public Row3<TVec> Load(float* p) => new(TVec.Load(p), TVec.Load(p + middle), TVec.Load(p + right));
        }
    }
}
