using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparse.Formats;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>The 1x1 convolution over CHW activations: SpMM (sparse weights x dense pixels) or the dense path.</summary>
/// <remarks>
/// Loop order as in the paper: pixel tiles outside (so the input slab Cin x tile stays in L1/L2), output channel blocks
/// inside, and per block only its stored input rows. A micro-tile keeps block width x tile vectors accumulators in
/// registers (up to 4 x 4; one-channel blocks, the usual case at random sparsity, take 8 vectors when at least 9 are
/// left, halving the per-block costs per pixel, which dominate on wide planes with few input channels), starts them at the bias and finishes with residual, store and activation. The dense path is
/// the same micro-kernel over blocks that store every input row, i.e. a register-blocked GEMM with packed weights.
/// A range that is not a whole number of vectors ends with a tile whose last vector overlaps the previous one; only a
/// range narrower than one vector goes to the next narrower width, down to scalar. Nothing outside the range is read
/// or written, and the residual may alias the output.
/// </remarks>
internal static unsafe class PointwiseKernel
{
    /// <summary>With 32 vector registers a micro-tile can hold 4 x 4 accumulators; with 16 (AVX2) it takes 4 x 2.</summary>
    private static readonly bool WideRegisterFile = Avx512F.IsSupported || AdvSimd.IsSupported;

    /// <summary>
    /// 8-vector tiles only while their input slab (Cin x 8 vectors) fills at most half of a 32 KiB L1: beyond that the
    /// 4-vector tile, whose slab stays in L1 twice as long, wins (Zen 4, random 70-90% sparsity: 57 vs 63 GFLOP/s at
    /// 64 -> 128 @ 56x56; the 8-vector tile wins 61-71 vs 56-61 with 32 input channels).
    /// </summary>
    private const int EightVectorSlabBytes = 16 * 1024;

    /// <summary>
    /// For output channels [channelStart, channelEnd) and pixels [pixelStart, pixelStart + pixelCount):
    /// <c>output[c * strides.Output + p] = activation(sum_k W[c,k] * input[k * strides.Input + p] + bias[c] + residual[c * strides.Residual + p])</c>.
    /// <paramref name="residual"/> may be null. The strides are the floats between channel planes of each operand (H*W of
    /// the layer, or more where the plan pads planes to whole cache lines). Never reads or writes outside the given pixel
    /// and channel ranges.
    /// </summary>
    public static void Run(PointwiseWeights weights, float* input, float* output, float* residual, PlaneStrides strides,
        int pixelStart, int pixelCount, int channelStart, int channelEnd, in Activation activation, SimdWidth width)
    {
        Validate(weights, input, output, residual, strides, pixelStart, pixelCount, channelStart, channelEnd);
        var work = new Work(weights, input, output, residual, strides, channelStart, channelEnd, activation);
        int pixel = pixelStart, end = pixelStart + pixelCount;
        switch (SimdSupport.Resolve(width))
        {
            case SimdWidth.Vector512:
                pixel = RunTiles<Float512>(work, pixel, end);
                goto case SimdWidth.Vector256;
            case SimdWidth.Vector256:
                pixel = RunTiles<Float256>(work, pixel, end);
                goto case SimdWidth.Vector128;
            case SimdWidth.Vector128:
                pixel = RunTiles<Float128>(work, pixel, end);
                goto case SimdWidth.Scalar;
            case SimdWidth.Scalar:
                RunTiles<Scalar>(work, pixel, end);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(width), width, "Supported widths: Auto, Scalar, Vector128, Vector256, Vector512.");
        }
        // The native weights must outlive the loops above; the finalizer would free them once `weights` is dead.
        GC.KeepAlive(weights);
    }

    private static void Validate(PointwiseWeights weights, float* input, float* output, float* residual, PlaneStrides strides,
        int pixelStart, int pixelCount, int channelStart, int channelEnd)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (input == null) throw new ArgumentNullException(nameof(input));
        if (output == null) throw new ArgumentNullException(nameof(output));
        int plane = Math.Min(strides.Input, Math.Min(strides.Output, residual == null ? int.MaxValue : strides.Residual));
        if (pixelStart < 0 || pixelCount < 0 || (long)pixelStart + pixelCount > plane)
            throw new ArgumentOutOfRangeException(nameof(pixelCount), $"Pixels [{pixelStart}, {pixelStart}+{pixelCount}) must lie within [0, {plane}), the narrowest plane stride.");
        int granularity = weights.ChannelGranularity, channels = weights.OutChannels;
        if (channelStart < 0 || channelStart > channelEnd || channelEnd > channels
            || channelStart % granularity != 0 || (channelEnd % granularity != 0 && channelEnd != channels))
            throw new ArgumentOutOfRangeException(nameof(channelEnd),
                $"Channels [{channelStart}, {channelEnd}) must lie within [0, {channels}) with both ends multiples of {granularity} (or the end at {channels}).");
    }

    /// <summary>What every tile of one call shares.</summary>
    private readonly struct Work(PointwiseWeights weights, float* input, float* output, float* residual, PlaneStrides strides,
        int channelStart, int channelEnd, Activation activation)
    {
        public readonly PointwiseBlock* FirstBlock = weights.BlockAt(channelStart);
        public readonly PointwiseBlock* BlocksEnd = weights.BlocksEnd;
        public readonly float* Bias = weights.Bias;
        public readonly float* Input = input;
        public readonly float* Output = output;
        public readonly float* Residual = residual;
        public readonly nint InputStride = strides.Input, OutputStride = strides.Output, ResidualStride = strides.Residual;
        public readonly int InChannels = weights.InChannels;
        public readonly int ChannelEnd = channelEnd;
        public readonly Activation Activation = activation;

        /// <summary>None, ReLU and Clip are a clamp to [ClampMin, ClampMax], applied in registers before the store.</summary>
        public readonly bool ClampsInRegisters = activation.Kind is ActivationKind.None or ActivationKind.Relu or ActivationKind.Clip;
        public readonly float ClampMin = activation.Kind switch
        {
            ActivationKind.Relu => 0f,
            ActivationKind.Clip => activation.Alpha,
            _ => float.NegativeInfinity,
        };
        public readonly float ClampMax = activation.Kind == ActivationKind.Clip ? activation.Beta : float.PositiveInfinity;
    }

    /// <summary>
    /// Covers [<paramref name="pixel"/>, <paramref name="end"/>) with tiles of <typeparamref name="TVec"/> vectors; returns
    /// <paramref name="pixel"/> unchanged when fewer than one vector of pixels is left (a narrower width takes them).
    /// The last tile may shift its last vector back so it overlaps the one before instead of reading past the range.
    /// </summary>
    private static int RunTiles<TVec>(in Work work, int pixel, int end) where TVec : struct, IFloatVector<TVec>
    {
        int lanes = TVec.Count;
        if (end - pixel < lanes) return pixel;
        if (WideRegisterFile && (long)work.InChannels * 8 * lanes * sizeof(float) <= EightVectorSlabBytes)
            for (; end - pixel >= 9 * lanes; pixel += 8 * lanes)
                RunEightVectorTile<TVec>(work, pixel);
        int maxVectors = WideRegisterFile ? 4 : 2;
        for (; end - pixel >= (maxVectors + 1) * lanes; pixel += maxVectors * lanes)
            RunTile<TVec>(work, pixel, maxVectors, maxVectors * lanes);
        if (end - pixel > maxVectors * lanes)
        {
            // Between maxVectors and maxVectors + 1 vectors left: half a tile now, the rest in one overlapping tile.
            RunTile<TVec>(work, pixel, maxVectors / 2, maxVectors / 2 * lanes);
            pixel += maxVectors / 2 * lanes;
        }
        RunTile<TVec>(work, pixel, (end - pixel + lanes - 1) / lanes, end - pixel);
        return end;
    }

    private static void RunTile<TVec>(in Work work, int pixel, int vectors, int pixels) where TVec : struct, IFloatVector<TVec>
    {
        switch (vectors)
        {
            case 4: RunTile<TVec, Four>(work, pixel, pixels); break;
            case 3: RunTile<TVec, Three>(work, pixel, pixels); break;
            case 2: RunTile<TVec, Two>(work, pixel, pixels); break;
            default: RunTile<TVec, One>(work, pixel, pixels); break;
        }
    }

    /// <summary>
    /// All channel blocks over 8 vectors of pixels: one-channel blocks (random sparsity) in one micro-tile, so the block's
    /// fixed costs (loop exit, bias, epilogue) are spread over twice the pixels; wider blocks as two 4-vector tiles.
    /// </summary>
    private static void RunEightVectorTile<TVec>(in Work work, int pixel) where TVec : struct, IFloatVector<TVec>
    {
        for (var block = work.FirstBlock; block < work.BlocksEnd && block->FirstChannel < work.ChannelEnd; block++)
        {
            switch (block->Width)
            {
                case 4:
                    MicroTile<TVec, Four, Four>(work, block, pixel, 4 * TVec.Count);
                    MicroTile<TVec, Four, Four>(work, block, pixel + 4 * TVec.Count, 4 * TVec.Count);
                    break;
                case 2:
                    MicroTile<TVec, Four, Two>(work, block, pixel, 4 * TVec.Count);
                    MicroTile<TVec, Four, Two>(work, block, pixel + 4 * TVec.Count, 4 * TVec.Count);
                    break;
                case 1: MicroTileEightVectors<TVec>(work, block, pixel); break;
                default: throw new InvalidOperationException($"Block width {block->Width} is not one of 4, 2, 1.");
            }
        }
    }

    /// <summary>One one-channel block over 8 whole vectors of pixels: 8 loads and 8 FMAs per stored weight.</summary>
    private static void MicroTileEightVectors<TVec>(in Work work, PointwiseBlock* block, int pixel) where TVec : struct, IFloatVector<TVec>
    {
        nint stride = work.InputStride, n = TVec.Count;
        float* output = work.Output + block->FirstChannel * work.OutputStride + pixel;
        float* residual = work.Residual == null ? null : work.Residual + block->FirstChannel * work.ResidualStride + pixel;
        TVec a0, a1, a2, a3, a4, a5, a6, a7;
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = TVec.Broadcast(work.Bias[block->FirstChannel]);

        float* w = block->Values;
        float* row = work.Input + pixel;
        for (int* delta = block->RowDeltas, end = delta + block->RowCount; delta < end; delta++, w++)
        {
            row += *delta * stride;
            TVec weight = TVec.Broadcast(*w);
            a0 = TVec.MultiplyAdd(TVec.Load(row), weight, a0);
            a1 = TVec.MultiplyAdd(TVec.Load(row + n), weight, a1);
            a2 = TVec.MultiplyAdd(TVec.Load(row + 2 * n), weight, a2);
            a3 = TVec.MultiplyAdd(TVec.Load(row + 3 * n), weight, a3);
            a4 = TVec.MultiplyAdd(TVec.Load(row + 4 * n), weight, a4);
            a5 = TVec.MultiplyAdd(TVec.Load(row + 5 * n), weight, a5);
            a6 = TVec.MultiplyAdd(TVec.Load(row + 6 * n), weight, a6);
            a7 = TVec.MultiplyAdd(TVec.Load(row + 7 * n), weight, a7);
        }

        if (residual != null)
        {
            AddRow<TVec, Four>(ref a0, ref a1, ref a2, ref a3, residual, n, 2 * n, 3 * n);
            AddRow<TVec, Four>(ref a4, ref a5, ref a6, ref a7, residual + 4 * n, n, 2 * n, 3 * n);
        }
        if (work.ClampsInRegisters)
        {
            TVec min = TVec.Broadcast(work.ClampMin), max = TVec.Broadcast(work.ClampMax);
            ClampRow<TVec, Four>(ref a0, ref a1, ref a2, ref a3, min, max);
            ClampRow<TVec, Four>(ref a4, ref a5, ref a6, ref a7, min, max);
        }
        StoreRow<TVec, Four>(a0, a1, a2, a3, output, n, 2 * n, 3 * n);
        StoreRow<TVec, Four>(a4, a5, a6, a7, output + 4 * n, n, 2 * n, 3 * n);
        if (!work.ClampsInRegisters) VectorActivation.ApplyInPlace<TVec>(output, 8 * TVec.Count, work.Activation);
    }

    /// <summary>All channel blocks of the range over the <paramref name="pixels"/> at <paramref name="pixel"/>, held in <typeparamref name="TVectors"/> vectors.</summary>
    private static void RunTile<TVec, TVectors>(in Work work, int pixel, int pixels)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        for (var block = work.FirstBlock; block < work.BlocksEnd && block->FirstChannel < work.ChannelEnd; block++)
        {
            switch (block->Width)
            {
                case 4: MicroTile<TVec, TVectors, Four>(work, block, pixel, pixels); break;
                case 2: MicroTile<TVec, TVectors, Two>(work, block, pixel, pixels); break;
                case 1: MicroTile<TVec, TVectors, One>(work, block, pixel, pixels); break;
                default: throw new InvalidOperationException($"Block width {block->Width} is not one of 4, 2, 1.");
            }
        }
    }

    /// <summary>
    /// One block of <typeparamref name="TWidth"/> channels over <paramref name="pixels"/> pixels held in <typeparamref name="TVectors"/>
    /// vectors (the last one shifted back to end at <paramref name="pixels"/> when they are not a whole number of vectors).
    /// Accumulator aXY is channel X, vector Y; the constant type arguments let the JIT drop the unused ones.
    /// </summary>
    private static void MicroTile<TVec, TVectors, TWidth>(in Work work, PointwiseBlock* block, int pixel, int pixels)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TWidth : struct, IConstant
    {
        nint stride = work.InputStride, outputStride = work.OutputStride, residualStride = work.ResidualStride;
        float* output = work.Output + block->FirstChannel * outputStride + pixel;
        float* residual = work.Residual == null ? null : work.Residual + block->FirstChannel * residualStride + pixel;
        float* bias = work.Bias + block->FirstChannel;
        int last = pixels - TVec.Count;
        nint o1 = Math.Min(TVec.Count, last), o2 = Math.Min(2 * TVec.Count, last), o3 = Math.Min(3 * TVec.Count, last);
        bool v1 = TVectors.Value > 1, v2 = TVectors.Value > 2, v3 = TVectors.Value > 3;
        bool c1 = TWidth.Value > 1, c2 = TWidth.Value > 2, c3 = TWidth.Value > 3;

        TVec a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        a00 = a01 = a02 = a03 = TVec.Broadcast(bias[0]);
        a10 = a11 = a12 = a13 = c1 ? TVec.Broadcast(bias[1]) : default;
        a20 = a21 = a22 = a23 = c2 ? TVec.Broadcast(bias[2]) : default;
        a30 = a31 = a32 = a33 = c3 ? TVec.Broadcast(bias[3]) : default;

        float* w = block->Values;
        float* row = work.Input + pixel;
        for (int* delta = block->RowDeltas, end = delta + block->RowCount; delta < end; delta++, w += TWidth.Value)
        {
            row += *delta * stride;
            TVec x0 = TVec.Load(row);
            TVec x1 = v1 ? TVec.Load(row + o1) : default;
            TVec x2 = v2 ? TVec.Load(row + o2) : default;
            TVec x3 = v3 ? TVec.Load(row + o3) : default;

            MultiplyAddRow<TVec, TVectors>(w[0], x0, x1, x2, x3, ref a00, ref a01, ref a02, ref a03);
            if (c1) MultiplyAddRow<TVec, TVectors>(w[1], x0, x1, x2, x3, ref a10, ref a11, ref a12, ref a13);
            if (c2) MultiplyAddRow<TVec, TVectors>(w[2], x0, x1, x2, x3, ref a20, ref a21, ref a22, ref a23);
            if (c3) MultiplyAddRow<TVec, TVectors>(w[3], x0, x1, x2, x3, ref a30, ref a31, ref a32, ref a33);
        }

        // Every residual load comes before any store, so the residual may be the output buffer itself.
        if (residual != null)
        {
            AddRow<TVec, TVectors>(ref a00, ref a01, ref a02, ref a03, residual, o1, o2, o3);
            if (c1) AddRow<TVec, TVectors>(ref a10, ref a11, ref a12, ref a13, residual + residualStride, o1, o2, o3);
            if (c2) AddRow<TVec, TVectors>(ref a20, ref a21, ref a22, ref a23, residual + 2 * residualStride, o1, o2, o3);
            if (c3) AddRow<TVec, TVectors>(ref a30, ref a31, ref a32, ref a33, residual + 3 * residualStride, o1, o2, o3);
        }
        if (work.ClampsInRegisters)
        {
            TVec min = TVec.Broadcast(work.ClampMin), max = TVec.Broadcast(work.ClampMax);
            ClampRow<TVec, TVectors>(ref a00, ref a01, ref a02, ref a03, min, max);
            if (c1) ClampRow<TVec, TVectors>(ref a10, ref a11, ref a12, ref a13, min, max);
            if (c2) ClampRow<TVec, TVectors>(ref a20, ref a21, ref a22, ref a23, min, max);
            if (c3) ClampRow<TVec, TVectors>(ref a30, ref a31, ref a32, ref a33, min, max);
        }
        StoreRow<TVec, TVectors>(a00, a01, a02, a03, output, o1, o2, o3);
        if (c1) StoreRow<TVec, TVectors>(a10, a11, a12, a13, output + outputStride, o1, o2, o3);
        if (c2) StoreRow<TVec, TVectors>(a20, a21, a22, a23, output + 2 * outputStride, o1, o2, o3);
        if (c3) StoreRow<TVec, TVectors>(a30, a31, a32, a33, output + 3 * outputStride, o1, o2, o3);

        // Other activations run over the stored pixels once each (overlapping vectors stored equal values), after the
        // accumulators are dead so their calls (Exp) do not push the accumulators out of registers.
        if (!work.ClampsInRegisters)
            for (int c = 0; c < TWidth.Value; c++)
                VectorActivation.ApplyInPlace<TVec>(output + c * outputStride, pixels, work.Activation);
    }

    /// <summary>One channel's accumulators += its weight x the input vectors (x first keeps the JIT's FMA in place).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAddRow<TVec, TVectors>(float weight, TVec x0, TVec x1, TVec x2, TVec x3, ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        TVec w = TVec.Broadcast(weight);
        a0 = TVec.MultiplyAdd(x0, w, a0);
        if (TVectors.Value > 1) a1 = TVec.MultiplyAdd(x1, w, a1);
        if (TVectors.Value > 2) a2 = TVec.MultiplyAdd(x2, w, a2);
        if (TVectors.Value > 3) a3 = TVec.MultiplyAdd(x3, w, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow<TVec, TVectors>(ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3, float* residual, nint o1, nint o2, nint o3)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        a0 += TVec.Load(residual);
        if (TVectors.Value > 1) a1 += TVec.Load(residual + o1);
        if (TVectors.Value > 2) a2 += TVec.Load(residual + o2);
        if (TVectors.Value > 3) a3 += TVec.Load(residual + o3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ClampRow<TVec, TVectors>(ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3, TVec min, TVec max)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        a0 = Clamp(a0, min, max);
        if (TVectors.Value > 1) a1 = Clamp(a1, min, max);
        if (TVectors.Value > 2) a2 = Clamp(a2, min, max);
        if (TVectors.Value > 3) a3 = Clamp(a3, min, max);
    }

    /// <summary>
    /// min(max(x, lo), hi) with one vmaxps and one vminps: the IEEE Max/Min of <see cref="IFloatVector{TSelf}"/> cost three
    /// more instructions each to order -0 and NaN, which shows on blocks with few rows. The bound goes first so a NaN in
    /// <paramref name="value"/> still propagates (x86 returns the second operand on NaN); -0 may stay -0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Clamp<TVec>(TVec value, TVec min, TVec max) where TVec : struct, IFloatVector<TVec>
    {
        if (typeof(TVec) == typeof(Float512))
            return Unsafe.BitCast<Vector512<float>, TVec>(Vector512.MinNative(Unsafe.BitCast<TVec, Vector512<float>>(max),
                Vector512.MaxNative(Unsafe.BitCast<TVec, Vector512<float>>(min), Unsafe.BitCast<TVec, Vector512<float>>(value))));
        if (typeof(TVec) == typeof(Float256))
            return Unsafe.BitCast<Vector256<float>, TVec>(Vector256.MinNative(Unsafe.BitCast<TVec, Vector256<float>>(max),
                Vector256.MaxNative(Unsafe.BitCast<TVec, Vector256<float>>(min), Unsafe.BitCast<TVec, Vector256<float>>(value))));
        return TVec.Min(TVec.Max(value, min), max);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TVec, TVectors>(TVec a0, TVec a1, TVec a2, TVec a3, float* output, nint o1, nint o2, nint o3)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        a0.Store(output);
        if (TVectors.Value > 1) a1.Store(output + o1);
        if (TVectors.Value > 2) a2.Store(output + o2);
        if (TVectors.Value > 3) a3.Store(output + o3);
    }

    /// <summary>A compile-time integer as a type, so the generic kernels unroll by it and the JIT folds the branches.</summary>
    private interface IConstant
    {
        static abstract int Value { get; }
    }

    private readonly struct One : IConstant { public static int Value => 1; }
    private readonly struct Two : IConstant { public static int Value => 2; }
    private readonly struct Three : IConstant { public static int Value => 3; }
    private readonly struct Four : IConstant { public static int Value => 4; }
}

/// <summary>Floats between consecutive channel planes of a 1x1 layer's input, output and residual.</summary>
internal readonly record struct PlaneStrides(int Input, int Output, int Residual)
{
    /// <summary>Every operand's planes packed back to back: <paramref name="pixels"/> floats apart.</summary>
    public static PlaneStrides Dense(int pixels) => new(pixels, pixels, pixels);
}
