using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Shape arithmetic of one 2-D convolution window over a CHW plane.</summary>
internal readonly record struct ConvGeometry(int InHeight, int InWidth, int KernelHeight, int KernelWidth, int StrideHeight, int StrideWidth, Padding Pad)
{
    public int PaddedHeight => InHeight + Pad.Top + Pad.Bottom;
    public int PaddedWidth => InWidth + Pad.Left + Pad.Right;
    public int OutHeight => (PaddedHeight - KernelHeight) / StrideHeight + 1;
    public int OutWidth => (PaddedWidth - KernelWidth) / StrideWidth + 1;
    public int Taps => KernelHeight * KernelWidth;

    /// <summary>Floats from one input channel's plane to the next: InHeight x InWidth unless the plan pads planes.</summary>
    public int InPlaneStride { get => _inPlaneStride > 0 ? _inPlaneStride : InHeight * InWidth; init => _inPlaneStride = value; }

    /// <summary>Floats from one output channel's plane to the next: OutHeight x OutWidth unless the plan pads planes.</summary>
    public int OutPlaneStride { get => _outPlaneStride > 0 ? _outPlaneStride : OutHeight * OutWidth; init => _outPlaneStride = value; }

    private readonly int _inPlaneStride, _outPlaneStride;

    /// <summary>Whether this is a band of a layer's output rows (<see cref="RowBand"/>): other bands, maybe another thread's, follow its rows.</summary>
    public bool IsRowBand { get; init; }

    /// <summary>
    /// Floats a kernel may write in each output plane from the first output pixel: the whole (padded) plane for a layer,
    /// only its own pixels for a band of rows.
    /// </summary>
    public int OutPlaneRoom => IsRowBand ? OutHeight * OutWidth : OutPlaneStride;

    /// <summary>Rows of one phase plane: padded row <c>i * StrideHeight + rowPhase</c> lands at row i.</summary>
    public int PhaseHeight => (PaddedHeight + StrideHeight - 1) / StrideHeight;

    /// <summary>Columns of one phase plane: padded column <c>j * StrideWidth + columnPhase</c> lands at column j.</summary>
    public int PhaseWidth => (PaddedWidth + StrideWidth - 1) / StrideWidth;

    public int PhaseFloats => PhaseHeight * PhaseWidth;

    /// <summary>Floats of the StrideHeight x StrideWidth phase planes of one input channel.</summary>
    public int PlaneFloats => StrideHeight * StrideWidth * PhaseFloats;

    /// <summary>
    /// Scratch for the phase planes of <paramref name="channels"/> input channels, one padded row, and slack: the last
    /// output positions of a plane read up to (KernelWidth - 1) / StrideWidth floats past it.
    /// </summary>
    public int ScratchFloats(int channels) => channels * PlaneFloats + PaddedWidth + KernelWidth + 16;

    /// <summary>
    /// The window over output rows [<paramref name="outStart"/>, <paramref name="outEnd"/>) alone: its input rows
    /// [<paramref name="firstRow"/>, firstRow + InHeight) with the padding each end of the band still needs (plane strides
    /// left for the caller to set). Needs padding smaller than the kernel, so every band holds an input row.
    /// </summary>
    public ConvGeometry RowBand(int outStart, int outEnd, out int firstRow)
    {
        int first = outStart * StrideHeight - Pad.Top, last = (outEnd - 1) * StrideHeight + KernelHeight - Pad.Top;
        firstRow = Math.Max(0, first);
        return new ConvGeometry(Math.Min(InHeight, last) - firstRow, InWidth, KernelHeight, KernelWidth, StrideHeight, StrideWidth,
            new Padding(Math.Max(0, -first), Pad.Left, Math.Max(0, last - InHeight), Pad.Right)) { IsRowBand = true };
    }
}

/// <summary>
/// Copies an input channel into zero-padded "phase planes" so that every convolution tap becomes a contiguous run: for
/// strides (sh, sw) the padded plane is split into sh x sw planes (plane (p, q) holds padded rows p, p+sh, ... and columns
/// q, q+sw, ...). Output (oy, ox) of tap (ky, kx) then reads plane (ky % sh, kx % sw) at row oy + ky / sh, column
/// ox + kx / sw, so with a row pitch of PhaseWidth a tap is one fixed offset from the output's flat index
/// <c>oy * PhaseWidth + ox</c>. Borders and strides need no special case.
/// </summary>
internal static unsafe class ConvPlanes
{
    /// <summary>
    /// Zeroes, in the planes of <paramref name="channels"/> channels, the padded rows [<paramref name="rowStart"/>,
    /// <paramref name="rowEnd"/>), and the row scratch. Padding sits at the same places for every channel of a layer, so it
    /// is cleared once per call and <see cref="Build"/> writes only the input rows.
    /// </summary>
    public static void Clear(float* scratch, in ConvGeometry g, int channels, int rowStart, int rowEnd)
    {
        for (int c = 0; c < channels; c++)
            for (int p = 0; p < g.StrideHeight; p++)
            {
                // Padded rows p, p + sh, ... of the band are consecutive rows of phase row p.
                int first = (Math.Max(rowStart - p, 0) + g.StrideHeight - 1) / g.StrideHeight, end = (Math.Max(rowEnd - p, 0) + g.StrideHeight - 1) / g.StrideHeight;
                for (int q = 0; q < g.StrideWidth; q++)
                {
                    float* plane = scratch + c * (long)g.PlaneFloats + (p * g.StrideWidth + q) * (long)g.PhaseFloats;
                    new Span<float>(plane + (long)first * g.PhaseWidth, (end - first) * g.PhaseWidth).Clear();
                }
            }
        new Span<float>(scratch + channels * (long)g.PlaneFloats, g.PaddedWidth).Clear();
    }

    /// <summary>Padded rows that output rows [outputStart, outputEnd) read.</summary>
    public static (int Start, int End) PaddedRows(in ConvGeometry g, int outputStart, int outputEnd) =>
        (outputStart * g.StrideHeight, (outputEnd - 1) * g.StrideHeight + g.KernelHeight);

    /// <summary>
    /// Writes the input rows among padded rows [<paramref name="rowStart"/>, <paramref name="rowEnd"/>) of one CHW input
    /// channel into its phase planes (cleared by <see cref="Clear"/>); <paramref name="rowScratch"/> is the PaddedWidth
    /// floats after the last plane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Build(float* channel, in ConvGeometry g, float* planes, float* rowScratch, int rowStart, int rowEnd)
    {
        int paddedWidth = g.PaddedWidth, phaseWidth = g.PhaseWidth, stride = g.StrideWidth;
        long phaseFloats = g.PhaseFloats;
        int first = Math.Max(rowStart - g.Pad.Top, 0), end = Math.Min(rowEnd - g.Pad.Top, g.InHeight);
        // Padded row r lives in row phase r % sh at phase row r / sh; both advance without dividing per row.
        int rowPhase = (first + g.Pad.Top) % g.StrideHeight, phaseRow = (first + g.Pad.Top) / g.StrideHeight;
        for (int y = first; y < end; y++)
        {
            float* destination = planes + rowPhase * stride * phaseFloats + (long)phaseRow * phaseWidth;
            if (++rowPhase == g.StrideHeight)
            {
                rowPhase = 0;
                phaseRow++;
            }
            if (stride == 1)
            {
                // A single column phase: the row goes straight to its place between the (cleared) margins.
                CopyRow(channel + (long)y * g.InWidth, destination + g.Pad.Left, g.InWidth);
            }
            else if (stride == 2)
            {
                // Input column x sits at padded column x + Left: with Left even, even input columns go to the even phase;
                // with Left odd, to the odd phase. Either way at offset Left / 2 (rounded as below).
                float* even = destination, odd = destination + phaseFloats;
                int left = g.Pad.Left;
                if (left % 2 == 0) Deinterleave(channel + (long)y * g.InWidth, g.InWidth, even + left / 2, odd + left / 2);
                else Deinterleave(channel + (long)y * g.InWidth, g.InWidth, odd + left / 2, even + left / 2 + 1);
            }
            else
            {
                // Rare strides: pad the row in scratch (its margins stay clear), then split it into the phases.
                new ReadOnlySpan<float>(channel + (long)y * g.InWidth, g.InWidth).CopyTo(new Span<float>(rowScratch + g.Pad.Left, g.InWidth));
                SplitPhases(rowScratch, paddedWidth, stride, destination, phaseFloats);
            }
        }
    }

    /// <summary>
    /// Copies a short row inline, widest vectors first: rows of late layers are 7-28 floats, where a call to the runtime's
    /// memmove costs more than the copy. Writes exactly <paramref name="count"/> floats (the padding around them stays zero).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CopyRow(float* from, float* to, int count)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= count; i += 16) Vector512.Load(from + i).Store(to + i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= count; i += 8) Vector256.Load(from + i).Store(to + i);
        for (; i + 4 <= count; i += 4) Vector128.Load(from + i).Store(to + i);
        for (; i < count; i++) to[i] = from[i];
    }

    /// <summary>General stride: plane q, column j = row[j * stride + q]; columns past the row are zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SplitPhases(float* row, int length, int stride, float* destination, long planeFloats)
    {
        int phaseWidth = (length + stride - 1) / stride;
        for (int q = 0; q < stride; q++)
        {
            float* plane = destination + q * planeFloats;
            for (int j = 0; j < phaseWidth; j++)
            {
                int column = j * stride + q;
                plane[j] = column < length ? row[column] : 0f;
            }
        }
    }

    /// <summary>Stride 2: even columns to <paramref name="even"/>, odd ones to <paramref name="odd"/>; writes exactly ceil(length / 2) and floor(length / 2) floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Deinterleave(float* row, int length, float* even, float* odd)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            Vector512<int> evenIndex = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            Vector512<int> oddIndex = evenIndex + Vector512<int>.One;
            for (; i + 32 <= length; i += 32)
            {
                Vector512<float> a = Vector512.Load(row + i), b = Vector512.Load(row + i + 16);
                Avx512F.PermuteVar16x32x2(a, evenIndex, b).Store(even + i / 2);
                Avx512F.PermuteVar16x32x2(a, oddIndex, b).Store(odd + i / 2);
            }
        }
        // AVX2 also takes the remainder of the AVX-512 loop, leaving at most 15 floats to the scalar loop.
        if (Avx2.IsSupported)
        {
            for (; i + 16 <= length; i += 16)
            {
                Vector256<float> a = Vector256.Load(row + i), b = Vector256.Load(row + i + 8);
                // Shuffle picks even (odd) lanes within each 128-bit half; Permute4x64 then orders the halves.
                Avx2.Permute4x64(Avx.Shuffle(a, b, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle().Store(even + i / 2);
                Avx2.Permute4x64(Avx.Shuffle(a, b, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle().Store(odd + i / 2);
            }
        }
        // SSE for the next 8 (rows of late layers are 14-56 floats, so the tail is most of the work there): within one
        // 128-bit register Shuffle already yields the lanes in order.
        if (Sse.IsSupported)
        {
            for (; i + 8 <= length; i += 8)
            {
                Vector128<float> a = Vector128.Load(row + i), b = Vector128.Load(row + i + 4);
                Sse.Shuffle(a, b, 0b10_00_10_00).Store(even + i / 2);
                Sse.Shuffle(a, b, 0b11_01_11_01).Store(odd + i / 2);
            }
        }
        for (; i + 2 <= length; i += 2)
        {
            even[i / 2] = row[i];
            odd[i / 2] = row[i + 1];
        }
        if (i < length) even[i / 2] = row[i];
    }

    /// <summary>
    /// Points <paramref name="taps"/>[t] at tap t's source for output row 0, taps ordered (channel, ky, kx) like OIHW weights,
    /// over <paramref name="channels"/> consecutive channels' planes; output row oy reads <c>oy * PhaseWidth</c> further.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FillTaps(float** taps, float* planes, in ConvGeometry g, int channels)
    {
        int t = 0;
        for (int c = 0; c < channels; c++)
            for (int ky = 0; ky < g.KernelHeight; ky++)
                for (int kx = 0; kx < g.KernelWidth; kx++)
                {
                    int plane = (ky % g.StrideHeight) * g.StrideWidth + kx % g.StrideWidth;
                    taps[t++] = planes + c * (long)g.PlaneFloats + plane * (long)g.PhaseFloats + (ky / g.StrideHeight) * (long)g.PhaseWidth + kx / g.StrideWidth;
                }
    }

    /// <summary>Moves every tap pointer by <paramref name="floats"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Advance(float** taps, int count, long floats)
    {
        for (int t = 0; t < count; t++) taps[t] += floats;
    }
}

/// <summary>The inner loops shared by the direct and depthwise convolutions: one output row as a sum over taps.</summary>
internal static unsafe class TapRow
{
    /// <summary>
    /// <c>output[x] = bias + sum_t weights[t] * taps[t][x]</c> for x in [0, width), in vectors; a ragged end is covered by
    /// one more vector ending at <paramref name="width"/> (recomputing a few outputs to the same bits), or by the same code
    /// with <see cref="Scalar"/> when the row is narrower than a vector. <typeparamref name="TFunction"/> is applied in
    /// registers before each store (the overlapping vector recomputes from the taps, so nothing is activated twice).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TVec, TFunction>(float** taps, int tapCount, float* weights, float bias, float* output, int width, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int x = Body<TVec, TFunction>(taps, tapCount, weights, bias, output, 0, width, alpha, beta);
        if (x == width) return;
        if (width >= TVec.Count) Body<TVec, TFunction>(taps, tapCount, weights, bias, output, width - TVec.Count, width, alpha, beta);
        else Body<Scalar, TFunction>(taps, tapCount, weights, bias, output, x, width, alpha, beta);
    }

    private static int Body<TVec, TFunction>(float** taps, int tapCount, float* weights, float bias, float* output, int x, int width, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction =>
        tapCount == 9 ? Run3x3<TVec, TFunction>(taps, weights, bias, output, x, width, alpha, beta)
            : RunGeneral<TVec, TFunction>(taps, tapCount, weights, bias, output, x, width, alpha, beta);

    /// <summary>
    /// Any tap count. Four vectors per step: each output's FMAs form a serial chain (4-cycle latency), so independent
    /// chains are what keeps the FMA units busy; each weight broadcast and tap pointer also serves four FMAs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int RunGeneral<TVec, TFunction>(float** taps, int tapCount, float* weights, float bias, float* output, int x, int width, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int n = TVec.Count;
        for (; x + 4 * n <= width; x += 4 * n)
        {
            TVec a0 = TVec.Broadcast(bias), a1 = a0, a2 = a0, a3 = a0;
            for (int t = 0; t < tapCount; t++)
            {
                TVec w = TVec.Broadcast(weights[t]);
                float* source = taps[t] + x;
                a0 = TVec.MultiplyAdd(TVec.Load(source), w, a0);
                a1 = TVec.MultiplyAdd(TVec.Load(source + n), w, a1);
                a2 = TVec.MultiplyAdd(TVec.Load(source + 2 * n), w, a2);
                a3 = TVec.MultiplyAdd(TVec.Load(source + 3 * n), w, a3);
            }
            StoreFour<TVec, TFunction, Four>(output + x, n, a0, a1, a2, a3, alpha, beta);
        }
        for (; x + n <= width; x += n)
        {
            TVec a = TVec.Broadcast(bias);
            for (int t = 0; t < tapCount; t++) a = TVec.MultiplyAdd(TVec.Load(taps[t] + x), TVec.Broadcast(weights[t]), a);
            TFunction.Apply(a, alpha, beta).Store(output + x);
        }
        return x;
    }

    /// <summary>3x3 (nine taps) with the weights held in registers, four independent vectors per step; the same summation order as <see cref="RunGeneral"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Run3x3<TVec, TFunction>(float** taps, float* weights, float bias, float* output, int x, int width, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        float* t0 = taps[0], t1 = taps[1], t2 = taps[2], t3 = taps[3], t4 = taps[4], t5 = taps[5], t6 = taps[6], t7 = taps[7], t8 = taps[8];
        TVec w0 = TVec.Broadcast(weights[0]), w1 = TVec.Broadcast(weights[1]), w2 = TVec.Broadcast(weights[2]);
        TVec w3 = TVec.Broadcast(weights[3]), w4 = TVec.Broadcast(weights[4]), w5 = TVec.Broadcast(weights[5]);
        TVec w6 = TVec.Broadcast(weights[6]), w7 = TVec.Broadcast(weights[7]), w8 = TVec.Broadcast(weights[8]);
        TVec b = TVec.Broadcast(bias);
        int n = TVec.Count;
        for (; x + 4 * n <= width; x += 4 * n)
        {
            StoreFour<TVec, TFunction, Four>(output + x, n, Nine(x), Nine(x + n), Nine(x + 2 * n), Nine(x + 3 * n), alpha, beta);
        }
        for (; x + n <= width; x += n) TFunction.Apply(Nine(x), alpha, beta).Store(output + x);
        return x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        TVec Nine(int i)
        {
            TVec a = TVec.MultiplyAdd(TVec.Load(t0 + i), w0, b);
            a = TVec.MultiplyAdd(TVec.Load(t1 + i), w1, a);
            a = TVec.MultiplyAdd(TVec.Load(t2 + i), w2, a);
            a = TVec.MultiplyAdd(TVec.Load(t3 + i), w3, a);
            a = TVec.MultiplyAdd(TVec.Load(t4 + i), w4, a);
            a = TVec.MultiplyAdd(TVec.Load(t5 + i), w5, a);
            a = TVec.MultiplyAdd(TVec.Load(t6 + i), w6, a);
            a = TVec.MultiplyAdd(TVec.Load(t7 + i), w7, a);
            return TVec.MultiplyAdd(TVec.Load(t8 + i), w8, a);
        }
    }

    /// <summary>
    /// Four output channels at once (weights rows 0..3 are <paramref name="tapCount"/> apart, outputs <paramref name="outputStride"/> apart),
    /// with the activation fused into the store. Four vectors of each channel per step: each loaded input vector feeds four
    /// FMAs and each weight broadcast four more, so loads stay at half the FMAs, and the 16 sums are independent chains.
    /// The 1-3 whole vectors left go in one tile of that many (a row of 112 is 4 + 3: one vector at a time left three
    /// sevenths of MobileNet's first layer at half the FMA rate, measured 18-20% slower in FirstLayerConvBenchmarks).
    /// The ragged end as in <see cref="Run{TVec, TFunction}"/>; every output sums bias, then taps in order, as there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunFour<TVec, TFunction>(float** taps, int tapCount, float* weights, float* bias, float* output, long outputStride, int width, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int n = TVec.Count, x = 0;
        for (; x + 4 * n <= width; x += 4 * n)
            RunFourTile<TVec, TFunction, Four>(taps, tapCount, weights, bias, output, outputStride, x, alpha, beta);
        switch ((width - x) / n)
        {
            case 3: RunFourTile<TVec, TFunction, Three>(taps, tapCount, weights, bias, output, outputStride, x, alpha, beta); x += 3 * n; break;
            case 2: RunFourTile<TVec, TFunction, Two>(taps, tapCount, weights, bias, output, outputStride, x, alpha, beta); x += 2 * n; break;
            case 1: RunFourTile<TVec, TFunction, One>(taps, tapCount, weights, bias, output, outputStride, x, alpha, beta); x += n; break;
        }
        if (x == width) return;
        if (width >= n) RunFourTile<TVec, TFunction, One>(taps, tapCount, weights, bias, output, outputStride, width - n, alpha, beta);
        else
            for (; x < width; x++) RunFourTile<Scalar, TFunction, One>(taps, tapCount, weights, bias, output, outputStride, x, alpha, beta);
    }

    /// <summary>
    /// <typeparamref name="TVectors"/> (1-4) vectors of four channels from column <paramref name="x"/>: each loaded input
    /// vector feeds four FMAs and each weight broadcast TVectors more, and the 4 x TVectors sums are independent chains.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunFourTile<TVec, TFunction, TVectors>(float** taps, int tapCount, float* weights, float* bias, float* output, long outputStride,
        int x, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction where TVectors : struct, IConstant
    {
        int n = TVec.Count;
        float* w1 = weights + tapCount, w2 = w1 + tapCount, w3 = w2 + tapCount;
        TVec a00 = TVec.Broadcast(bias[0]), a01 = a00, a02 = a00, a03 = a00;
        TVec a10 = TVec.Broadcast(bias[1]), a11 = a10, a12 = a10, a13 = a10;
        TVec a20 = TVec.Broadcast(bias[2]), a21 = a20, a22 = a20, a23 = a20;
        TVec a30 = TVec.Broadcast(bias[3]), a31 = a30, a32 = a30, a33 = a30;
        for (int t = 0; t < tapCount; t++)
        {
            float* source = taps[t] + x;
            TVec v0 = TVec.Load(source);
            TVec v1 = TVectors.Value > 1 ? TVec.Load(source + n) : default;
            TVec v2 = TVectors.Value > 2 ? TVec.Load(source + 2 * n) : default;
            TVec v3 = TVectors.Value > 3 ? TVec.Load(source + 3 * n) : default;
            FourFma<TVec, TVectors>(v0, v1, v2, v3, TVec.Broadcast(weights[t]), ref a00, ref a01, ref a02, ref a03);
            FourFma<TVec, TVectors>(v0, v1, v2, v3, TVec.Broadcast(w1[t]), ref a10, ref a11, ref a12, ref a13);
            FourFma<TVec, TVectors>(v0, v1, v2, v3, TVec.Broadcast(w2[t]), ref a20, ref a21, ref a22, ref a23);
            FourFma<TVec, TVectors>(v0, v1, v2, v3, TVec.Broadcast(w3[t]), ref a30, ref a31, ref a32, ref a33);
        }
        StoreFour<TVec, TFunction, TVectors>(output + x, n, a00, a01, a02, a03, alpha, beta);
        StoreFour<TVec, TFunction, TVectors>(output + outputStride + x, n, a10, a11, a12, a13, alpha, beta);
        StoreFour<TVec, TFunction, TVectors>(output + 2 * outputStride + x, n, a20, a21, a22, a23, alpha, beta);
        StoreFour<TVec, TFunction, TVectors>(output + 3 * outputStride + x, n, a30, a31, a32, a33, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FourFma<TVec, TVectors>(TVec v0, TVec v1, TVec v2, TVec v3, TVec w, ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        a0 = TVec.MultiplyAdd(v0, w, a0);
        if (TVectors.Value > 1) a1 = TVec.MultiplyAdd(v1, w, a1);
        if (TVectors.Value > 2) a2 = TVec.MultiplyAdd(v2, w, a2);
        if (TVectors.Value > 3) a3 = TVec.MultiplyAdd(v3, w, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreFour<TVec, TFunction, TVectors>(float* to, int step, TVec a0, TVec a1, TVec a2, TVec a3, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction where TVectors : struct, IConstant
    {
        TFunction.Apply(a0, alpha, beta).Store(to);
        if (TVectors.Value > 1) TFunction.Apply(a1, alpha, beta).Store(to + step);
        if (TVectors.Value > 2) TFunction.Apply(a2, alpha, beta).Store(to + 2 * step);
        if (TVectors.Value > 3) TFunction.Apply(a3, alpha, beta).Store(to + 3 * step);
    }
}
