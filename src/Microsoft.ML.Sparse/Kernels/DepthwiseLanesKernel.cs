using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Depthwise convolution of small planes (the late 7x7 layers, and 14x14 -> 7x7 at stride 2) with channels in vector
/// lanes: a block of TVec.Count channels is transposed into one zero-padded plane whose pixels are vectors (lane j =
/// channel j), so every tap is a plain vector FMA with the weight vector of the block's channels, every load is one
/// aligned pixel, and no lane holds padding or a ragged row end. One output row (or segment of a wider row, up to eight
/// pixels) is eight sums in registers; for each kernel row the input row's pixels are loaded once into registers and
/// slide one place per column tap, so each load feeds up to five FMAs (one load per FMA, as straight from the plane, runs at half the FMA rate:
/// the load ports, not the FMAs, bound it). Each lane performs exactly the sum of the other paths (bias, then taps in
/// (ky, kx) order), so which block a channel falls in never changes its bits.
/// </summary>
internal static unsafe class DepthwiseLanesKernel
{
    /// <summary>Widest vector, in floats: scratch is sized for it.</summary>
    private const int MaxLanes = 16;

    /// <summary>Output rows up to this many pixels: the row's sums are this many registers.</summary>
    private const int RowPixels = 8;

    /// <summary>Kernel rows up to this wide: the input row registers cover (RowPixels - 1) x stride + this many pixels.</summary>
    private const int MaxKernelWidth = 5;

    /// <summary>Pixels each kernel row loads at stride 1 and 2: (RowPixels - 1) x stride + MaxKernelWidth.</summary>
    private const int Stride1Inputs = 12, Stride2Inputs = 19;

    /// <summary>Input planes up to this many pixels (the position table lives on the stack).</summary>
    private const int MaxInputPixels = 4096;

    /// <summary>5x5 stride-1 rows up to this wide run in segments (14x14 and 28x28).</summary>
    private const int MaxSegmentedWidth = 32;

    /// <summary>
    /// Output rows that fill at most half a vector (7x7 under AVX-512), column strides 1 and 2, kernels up to five wide:
    /// there per-channel vectors would mostly hold padding and ragged row ends, and their loads at a plane's arbitrary
    /// offsets split cache lines. Under AVX-512 also 5x5 at stride 1 on rows up to 32 wide, in segments of up to eight
    /// pixels: 25 taps per pixel pay for the two transposes, where straight from the plane each FMA takes a weight
    /// broadcast and a fifth of a line-crossing load (DepthwiseKernelBenchmarks: 480 and 672 channels of 14x14 10-15%
    /// faster, 28x28 0-15%; 3x3, and 5x5 at stride 2 on wider rows, are slower in lanes).
    /// </summary>
    public static bool Supports<TVec>(in ConvGeometry g) where TVec : struct, IFloatVector<TVec> =>
        TVec.Count > 1 && g.StrideWidth <= 2 && g.KernelWidth <= MaxKernelWidth && g.InHeight * g.InWidth <= MaxInputPixels &&
        ((2 * g.OutWidth <= TVec.Count && g.OutWidth <= RowPixels) || (TVec.Count == MaxLanes && Segmented(g)));

    private static bool Segmented(in ConvGeometry g) =>
        g.KernelHeight == 5 && g.KernelWidth == 5 && g.StrideHeight == 1 && g.StrideWidth == 1 && g.OutWidth <= MaxSegmentedWidth;

    /// <summary>Output rows run in this many segments of at most RowPixels pixels, as even as can be (14 = 7 + 7).</summary>
    private static int Segments(in ConvGeometry g) => (g.OutWidth + RowPixels - 1) / RowPixels;

    /// <summary>
    /// Scratch floats: the padded lane plane with the slack its last row's loads run into, the lane weights and bias,
    /// and the lane output, RowPixels per segment of each output row (0 for planes never run here).
    /// </summary>
    public static int ScratchFloats(in ConvGeometry g) =>
        !(2 * g.OutWidth <= MaxLanes || Segmented(g)) ? 0 :
        (g.PaddedHeight * g.PaddedWidth + Stride2Inputs + g.Taps + 1 + g.OutHeight * Segments(g) * RowPixels) * MaxLanes;

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
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int n = TVec.Count, taps = g.Taps, outPixels = g.OutHeight * g.OutWidth, inPixels = g.InHeight * g.InWidth;
            int planeFloats = (g.PaddedHeight * g.PaddedWidth + Stride2Inputs) * n;
            float* plane = scratch, laneWeights = plane + planeFloats, laneBias = laneWeights + taps * n, laneOutput = laneBias + n;
            // Padding and slack stay zero: only interior pixels are written below, so only the rest is cleared (the scratch
            // is shared with other layers; clearing all of a 28x28 plane, 64 KiB, cost a tenth of a block's work).
            for (int y = 0, from = 0; y <= g.InHeight; y++)
            {
                int to = y < g.InHeight ? ((y + g.Pad.Top) * g.PaddedWidth + g.Pad.Left) * n : planeFloats;
                new Span<float>(plane + from, to - from).Clear();
                from = to + g.InWidth * n;
            }
            // Where input pixel p lands in the lane plane, and where output pixel p's sums are in the lane output.
            // Row by row, without a division per pixel: at 28x28 three per pixel cost as much as a block of 16 channels.
            int* inPositions = stackalloc int[inPixels];
            for (int y = 0, p = 0; y < g.InHeight; y++)
                for (int x = 0, at = ((y + g.Pad.Top) * g.PaddedWidth + g.Pad.Left) * n; x < g.InWidth; x++, at += n) inPositions[p++] = at;
            int segments = Segments(g), segmentWidth = (g.OutWidth + segments - 1) / segments, rowSlots = segments * RowPixels;
            int* outPositions = stackalloc int[outPixels];
            for (int oy = 0, p = 0; oy < g.OutHeight; oy++)
                for (int ox = 0, segment = 0, inSegment = 0; ox < g.OutWidth; ox++, p++)
                {
                    if (inSegment == segmentWidth) { segment++; inSegment = 0; }
                    outPositions[p] = (oy * rowSlots + segment * RowPixels + inSegment++) * n;
                }
            float alpha = activation.Alpha, beta = activation.Beta;
            int rowFloats = g.PaddedWidth * n, rowStep = g.StrideHeight * rowFloats;

            for (int c0 = channelStart; c0 < channelEnd; c0 += n)
            {
                // Lanes past the last channel repeat it (or hold stale values) and are never written out.
                int count = Math.Min(n, channelEnd - c0);
                if (MaskedVector.Supported<TVec>())
                {
                    Into16Lanes(input + (long)c0 * g.InPlaneStride, g.InPlaneStride, count, inPixels, inPositions, plane);
                    Into16Lanes(weights + (long)c0 * taps, taps, count, taps, null, laneWeights);
                }
                else
                {
                    for (int j = 0; j < count; j++)
                    {
                        float* from = input + (long)(c0 + j) * g.InPlaneStride;
                        for (int p = 0; p < inPixels; p++) plane[inPositions[p] + j] = from[p];
                        for (int t = 0; t < taps; t++) laneWeights[t * n + j] = weights[(long)(c0 + j) * taps + t];
                    }
                }
                for (int j = 0; j < n; j++) laneBias[j] = bias[c0 + Math.Min(j, count - 1)];
                TVec b = TVec.Load(laneBias);
                for (int oy = 0; oy < g.OutHeight; oy++)
                {
                    for (int segment = 0; segment < segments; segment++)
                    {
                        TVec a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b;
                        float* row = plane + (long)oy * rowStep + (long)segment * segmentWidth * g.StrideWidth * n;
                        for (int ky = 0; ky < g.KernelHeight; ky++, row += rowFloats)
                        {
                            float* w = laneWeights + ky * g.KernelWidth * n;
                            if (g.StrideWidth == 1) Stride1Row(row, w, g.KernelWidth, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
                            else Stride2Row(row, w, g.KernelWidth, ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
                        }
                        // Raw sums: the activation is applied on the way out, once per pixel vector.
                        float* to = laneOutput + (oy * rowSlots + segment * RowPixels) * n;
                        a0.Store(to); a1.Store(to + n); a2.Store(to + 2 * n); a3.Store(to + 3 * n);
                        a4.Store(to + 4 * n); a5.Store(to + 5 * n); a6.Store(to + 6 * n); a7.Store(to + 7 * n);
                    }
                }
                if (MaskedVector.Supported<TVec>())
                    OutOf16Lanes<TFunction>(laneOutput, outPixels, outPositions, output + (long)c0 * g.OutPlaneStride, g.OutPlaneStride, count, alpha, beta);
                else
                {
                    ActivationPass.ApplyStored<TVec, TFunction>(laneOutput, g.OutHeight * rowSlots * n, alpha, beta);
                    for (int j = 0; j < count; j++)
                    {
                        float* to = output + (long)(c0 + j) * g.OutPlaneStride;
                        for (int p = 0; p < outPixels; p++) to[p] = laneOutput[outPositions[p] + j];
                    }
                }
            }
        }

        /// <summary>
        /// One kernel row at column stride 1: output pixel j adds input pixel j + kx times weight kx. The row's pixels are
        /// loaded once and slide down one register per kx, so every FMA takes registers.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Stride1Row(float* row, float* w, int kernelWidth,
            ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3, ref TVec a4, ref TVec a5, ref TVec a6, ref TVec a7)
        {
            int n = TVec.Count;
            TVec i0 = TVec.Load(row), i1 = TVec.Load(row + n), i2 = TVec.Load(row + 2 * n), i3 = TVec.Load(row + 3 * n);
            TVec i4 = TVec.Load(row + 4 * n), i5 = TVec.Load(row + 5 * n), i6 = TVec.Load(row + 6 * n), i7 = TVec.Load(row + 7 * n);
            TVec i8 = TVec.Load(row + 8 * n), i9 = TVec.Load(row + 9 * n), i10 = TVec.Load(row + 10 * n), i11 = TVec.Load(row + 11 * n);
            for (int kx = 0; kx < kernelWidth; kx++)
            {
                TVec weight = TVec.Load(w + kx * n);
                a0 = TVec.MultiplyAdd(i0, weight, a0); a1 = TVec.MultiplyAdd(i1, weight, a1);
                a2 = TVec.MultiplyAdd(i2, weight, a2); a3 = TVec.MultiplyAdd(i3, weight, a3);
                a4 = TVec.MultiplyAdd(i4, weight, a4); a5 = TVec.MultiplyAdd(i5, weight, a5);
                a6 = TVec.MultiplyAdd(i6, weight, a6); a7 = TVec.MultiplyAdd(i7, weight, a7);
                i0 = i1; i1 = i2; i2 = i3; i3 = i4; i4 = i5; i5 = i6; i6 = i7; i7 = i8; i8 = i9; i9 = i10; i10 = i11;
            }
        }

        /// <summary>One kernel row at column stride 2: output pixel j adds input pixel 2j + kx; as <see cref="Stride1Row"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Stride2Row(float* row, float* w, int kernelWidth,
            ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3, ref TVec a4, ref TVec a5, ref TVec a6, ref TVec a7)
        {
            int n = TVec.Count;
            TVec i0 = TVec.Load(row), i1 = TVec.Load(row + n), i2 = TVec.Load(row + 2 * n), i3 = TVec.Load(row + 3 * n);
            TVec i4 = TVec.Load(row + 4 * n), i5 = TVec.Load(row + 5 * n), i6 = TVec.Load(row + 6 * n), i7 = TVec.Load(row + 7 * n);
            TVec i8 = TVec.Load(row + 8 * n), i9 = TVec.Load(row + 9 * n), i10 = TVec.Load(row + 10 * n), i11 = TVec.Load(row + 11 * n);
            TVec i12 = TVec.Load(row + 12 * n), i13 = TVec.Load(row + 13 * n), i14 = TVec.Load(row + 14 * n), i15 = TVec.Load(row + 15 * n);
            TVec i16 = TVec.Load(row + 16 * n), i17 = TVec.Load(row + 17 * n), i18 = TVec.Load(row + 18 * n);
            for (int kx = 0; kx < kernelWidth; kx++)
            {
                TVec weight = TVec.Load(w + kx * n);
                a0 = TVec.MultiplyAdd(i0, weight, a0); a1 = TVec.MultiplyAdd(i2, weight, a1);
                a2 = TVec.MultiplyAdd(i4, weight, a2); a3 = TVec.MultiplyAdd(i6, weight, a3);
                a4 = TVec.MultiplyAdd(i8, weight, a4); a5 = TVec.MultiplyAdd(i10, weight, a5);
                a6 = TVec.MultiplyAdd(i12, weight, a6); a7 = TVec.MultiplyAdd(i14, weight, a7);
                i0 = i1; i1 = i2; i2 = i3; i3 = i4; i4 = i5; i5 = i6; i6 = i7; i7 = i8; i8 = i9;
                i9 = i10; i10 = i11; i11 = i12; i12 = i13; i13 = i14; i14 = i15; i15 = i16; i16 = i17; i17 = i18;
            }
        }

        /// <summary>
        /// Rows of <paramref name="count"/> channels (16 or fewer; lanes past them repeat the last), <paramref name="length"/>
        /// floats each <paramref name="stride"/> apart, into the lanes of pixel vectors: element p to
        /// <paramref name="positions"/>[p] (or vector p if null), 16 at a time through a 16 x 16 transpose in registers; the
        /// last block's loads are masked at the row's end. A call of its own, for the JIT's registers and inlining budget.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void Into16Lanes(float* from, int stride, int count, int length, int* positions, float* to)
        {
            for (int p0 = 0; p0 < length; p0 += 16)
            {
                int valid = Math.Min(16, length - p0);
                Vector512<float> inRow = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(valid)).AsSingle();
                Vector512<float> r0 = Row(from, stride, count, 0, p0, valid, inRow), r1 = Row(from, stride, count, 1, p0, valid, inRow);
                Vector512<float> r2 = Row(from, stride, count, 2, p0, valid, inRow), r3 = Row(from, stride, count, 3, p0, valid, inRow);
                Vector512<float> r4 = Row(from, stride, count, 4, p0, valid, inRow), r5 = Row(from, stride, count, 5, p0, valid, inRow);
                Vector512<float> r6 = Row(from, stride, count, 6, p0, valid, inRow), r7 = Row(from, stride, count, 7, p0, valid, inRow);
                Vector512<float> r8 = Row(from, stride, count, 8, p0, valid, inRow), r9 = Row(from, stride, count, 9, p0, valid, inRow);
                Vector512<float> r10 = Row(from, stride, count, 10, p0, valid, inRow), r11 = Row(from, stride, count, 11, p0, valid, inRow);
                Vector512<float> r12 = Row(from, stride, count, 12, p0, valid, inRow), r13 = Row(from, stride, count, 13, p0, valid, inRow);
                Vector512<float> r14 = Row(from, stride, count, 14, p0, valid, inRow), r15 = Row(from, stride, count, 15, p0, valid, inRow);
                LaneTranspose.Transpose16x16(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ref r8, ref r9, ref r10, ref r11, ref r12, ref r13, ref r14, ref r15);
                if (valid == 16)
                {
                    Put(to, positions, p0 + 0, r0); Put(to, positions, p0 + 1, r1); Put(to, positions, p0 + 2, r2); Put(to, positions, p0 + 3, r3);
                    Put(to, positions, p0 + 4, r4); Put(to, positions, p0 + 5, r5); Put(to, positions, p0 + 6, r6); Put(to, positions, p0 + 7, r7);
                    Put(to, positions, p0 + 8, r8); Put(to, positions, p0 + 9, r9); Put(to, positions, p0 + 10, r10); Put(to, positions, p0 + 11, r11);
                    Put(to, positions, p0 + 12, r12); Put(to, positions, p0 + 13, r13); Put(to, positions, p0 + 14, r14); Put(to, positions, p0 + 15, r15);
                }
                else
                {
                    if (valid > 0) Put(to, positions, p0 + 0, r0); if (valid > 1) Put(to, positions, p0 + 1, r1);
                    if (valid > 2) Put(to, positions, p0 + 2, r2); if (valid > 3) Put(to, positions, p0 + 3, r3);
                    if (valid > 4) Put(to, positions, p0 + 4, r4); if (valid > 5) Put(to, positions, p0 + 5, r5);
                    if (valid > 6) Put(to, positions, p0 + 6, r6); if (valid > 7) Put(to, positions, p0 + 7, r7);
                    if (valid > 8) Put(to, positions, p0 + 8, r8); if (valid > 9) Put(to, positions, p0 + 9, r9);
                    if (valid > 10) Put(to, positions, p0 + 10, r10); if (valid > 11) Put(to, positions, p0 + 11, r11);
                    if (valid > 12) Put(to, positions, p0 + 12, r12); if (valid > 13) Put(to, positions, p0 + 13, r13);
                    if (valid > 14) Put(to, positions, p0 + 14, r14); if (valid > 15) Put(to, positions, p0 + 15, r15);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Row(float* from, int stride, int count, int j, int p0, int valid, Vector512<float> inRow)
        {
            float* at = from + (long)Math.Min(j, count - 1) * stride + p0;
            return valid == 16 ? Vector512.Load(at) : Avx512F.MaskLoad(at, inRow, Vector512<float>.Zero);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Put(float* to, int* positions, int p, Vector512<float> value) => value.Store(to + (positions == null ? p * 16 : positions[p]));

        /// <summary>
        /// The sums at <paramref name="positions"/> through the activation and a 16 x 16 transpose in registers into the
        /// output planes of the block's <paramref name="count"/> channels, the last 16 pixels' stores masked at the plane's end.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private static void OutOf16Lanes<TFunction>(float* laneOutput, int pixels, int* positions, float* to, int planeStride, int count,
            float alpha, float beta) where TFunction : struct, IActivationFunction
        {
            for (int p0 = 0; p0 < pixels; p0 += 16)
            {
                int valid = Math.Min(16, pixels - p0);
                Vector512<float> r0 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(0, valid - 1), alpha, beta), r1 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(1, valid - 1), alpha, beta);
                Vector512<float> r2 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(2, valid - 1), alpha, beta), r3 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(3, valid - 1), alpha, beta);
                Vector512<float> r4 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(4, valid - 1), alpha, beta), r5 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(5, valid - 1), alpha, beta);
                Vector512<float> r6 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(6, valid - 1), alpha, beta), r7 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(7, valid - 1), alpha, beta);
                Vector512<float> r8 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(8, valid - 1), alpha, beta), r9 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(9, valid - 1), alpha, beta);
                Vector512<float> r10 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(10, valid - 1), alpha, beta), r11 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(11, valid - 1), alpha, beta);
                Vector512<float> r12 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(12, valid - 1), alpha, beta), r13 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(13, valid - 1), alpha, beta);
                Vector512<float> r14 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(14, valid - 1), alpha, beta), r15 = Sum<TFunction>(laneOutput, positions, p0 + Math.Min(15, valid - 1), alpha, beta);
                LaneTranspose.Transpose16x16(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ref r8, ref r9, ref r10, ref r11, ref r12, ref r13, ref r14, ref r15);
                Vector512<float> inPlane = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(valid)).AsSingle();
                if (count > 0) Out(to + 0L * planeStride + p0, r0, valid, inPlane); if (count > 1) Out(to + 1L * planeStride + p0, r1, valid, inPlane);
                if (count > 2) Out(to + 2L * planeStride + p0, r2, valid, inPlane); if (count > 3) Out(to + 3L * planeStride + p0, r3, valid, inPlane);
                if (count > 4) Out(to + 4L * planeStride + p0, r4, valid, inPlane); if (count > 5) Out(to + 5L * planeStride + p0, r5, valid, inPlane);
                if (count > 6) Out(to + 6L * planeStride + p0, r6, valid, inPlane); if (count > 7) Out(to + 7L * planeStride + p0, r7, valid, inPlane);
                if (count > 8) Out(to + 8L * planeStride + p0, r8, valid, inPlane); if (count > 9) Out(to + 9L * planeStride + p0, r9, valid, inPlane);
                if (count > 10) Out(to + 10L * planeStride + p0, r10, valid, inPlane); if (count > 11) Out(to + 11L * planeStride + p0, r11, valid, inPlane);
                if (count > 12) Out(to + 12L * planeStride + p0, r12, valid, inPlane); if (count > 13) Out(to + 13L * planeStride + p0, r13, valid, inPlane);
                if (count > 14) Out(to + 14L * planeStride + p0, r14, valid, inPlane); if (count > 15) Out(to + 15L * planeStride + p0, r15, valid, inPlane);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Sum<TFunction>(float* laneOutput, int* positions, int p, float alpha, float beta) where TFunction : struct, IActivationFunction =>
            Unsafe.BitCast<Float512, Vector512<float>>(TFunction.Apply(Float512.Load(laneOutput + positions[p]), alpha, beta));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Out(float* at, Vector512<float> row, int valid, Vector512<float> inPlane)
        {
            if (valid == 16) row.Store(at);
            else Avx512F.MaskStore(at, inPlane, row);
        }
    }
}
