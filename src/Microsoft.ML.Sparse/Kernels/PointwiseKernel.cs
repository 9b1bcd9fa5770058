using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparse.Formats;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>The 1x1 convolution over CHW activations: SpMM (sparse weights x dense pixels) or the dense path.</summary>
/// <remarks>
/// Loop order as in the paper: pixel tiles outside (so the input slab Cin x tile stays in L1/L2), output channel blocks
/// inside, and per block only its stored input rows. A micro-tile keeps block width x tile vectors accumulators in
/// registers (up to 4 x 4), starts them at the bias and finishes with residual and activation. The dense path is the
/// same micro-kernel over blocks that store every input row, i.e. a register-blocked GEMM with packed weights.
/// Pixels left over after the widest vectors go to the next narrower width, down to scalar, so nothing is read or
/// written outside the requested range.
/// </remarks>
internal static unsafe class PointwiseKernel
{
    /// <summary>With 32 vector registers a micro-tile can hold 4 x 4 accumulators; with 16 (AVX2) it takes 4 x 2.</summary>
    private static readonly bool WideRegisterFile = Avx512F.IsSupported || AdvSimd.IsSupported;

    /// <summary>
    /// For output channels [channelStart, channelEnd) and pixels [pixelStart, pixelStart + pixelCount):
    /// <c>output[c * pixelStride + p] = activation(sum_k W[c,k] * input[k * pixelStride + p] + bias[c] + residual[c * pixelStride + p])</c>.
    /// <paramref name="residual"/> may be null. Input, output and residual share <paramref name="pixelStride"/> (H*W of the layer).
    /// Never reads or writes outside the given pixel and channel ranges.
    /// </summary>
    public static void Run(PointwiseWeights weights, float* input, float* output, float* residual, int pixelStride,
        int pixelStart, int pixelCount, int channelStart, int channelEnd, in Activation activation, SimdWidth width)
    {
        Validate(weights, input, output, pixelStride, pixelStart, pixelCount, channelStart, channelEnd);
        var work = new Work(weights, input, output, residual, pixelStride, channelStart, channelEnd);
        int pixel = pixelStart, end = pixelStart + pixelCount;
        switch (SimdSupport.Resolve(width))
        {
            case SimdWidth.Vector512:
                pixel = RunTiles<Float512>(work, pixel, end, activation);
                goto case SimdWidth.Vector256;
            case SimdWidth.Vector256:
                pixel = RunTiles<Float256>(work, pixel, end, activation);
                goto case SimdWidth.Vector128;
            case SimdWidth.Vector128:
                pixel = RunTiles<Float128>(work, pixel, end, activation);
                goto case SimdWidth.Scalar;
            case SimdWidth.Scalar:
                RunTiles<Scalar>(work, pixel, end, activation);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(width), width, "Supported widths: Auto, Scalar, Vector128, Vector256, Vector512.");
        }
        // The native weights must outlive the loops above; the finalizer would free them once `weights` is dead.
        GC.KeepAlive(weights);
    }

    private static void Validate(PointwiseWeights weights, float* input, float* output, int pixelStride,
        int pixelStart, int pixelCount, int channelStart, int channelEnd)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (input == null) throw new ArgumentNullException(nameof(input));
        if (output == null) throw new ArgumentNullException(nameof(output));
        if (pixelStart < 0 || pixelCount < 0 || (long)pixelStart + pixelCount > pixelStride)
            throw new ArgumentOutOfRangeException(nameof(pixelCount), $"Pixels [{pixelStart}, {pixelStart}+{pixelCount}) must lie within [0, {pixelStride}).");
        int granularity = weights.ChannelGranularity, channels = weights.OutChannels;
        if (channelStart < 0 || channelStart > channelEnd || channelEnd > channels
            || channelStart % granularity != 0 || (channelEnd % granularity != 0 && channelEnd != channels))
            throw new ArgumentOutOfRangeException(nameof(channelEnd),
                $"Channels [{channelStart}, {channelEnd}) must lie within [0, {channels}) with both ends multiples of {granularity} (or the end at {channels}).");
    }

    /// <summary>What every tile of one call shares.</summary>
    private readonly struct Work(PointwiseWeights weights, float* input, float* output, float* residual, int pixelStride, int channelStart, int channelEnd)
    {
        public readonly PointwiseBlock* FirstBlock = weights.BlockAt(channelStart);
        public readonly PointwiseBlock* BlocksEnd = weights.BlocksEnd;
        public readonly float* Bias = weights.Bias;
        public readonly float* Input = input;
        public readonly float* Output = output;
        public readonly float* Residual = residual;
        public readonly nint Stride = pixelStride;
        public readonly int ChannelEnd = channelEnd;
    }

    /// <summary>Runs every whole tile of <typeparamref name="TVec"/> vectors from <paramref name="pixel"/>; returns where they stopped.</summary>
    private static int RunTiles<TVec>(in Work work, int pixel, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        int lanes = TVec.Count;
        if (WideRegisterFile)
            for (; pixel + 4 * lanes <= end; pixel += 4 * lanes) RunTile<TVec, Four>(work, pixel, activation);
        else
            for (; pixel + 2 * lanes <= end; pixel += 2 * lanes) RunTile<TVec, Two>(work, pixel, activation);

        switch ((end - pixel) / lanes)
        {
            case 3: RunTile<TVec, Three>(work, pixel, activation); return pixel + 3 * lanes;
            case 2: RunTile<TVec, Two>(work, pixel, activation); return pixel + 2 * lanes;
            case 1: RunTile<TVec, One>(work, pixel, activation); return pixel + lanes;
            default: return pixel;
        }
    }

    /// <summary>All channel blocks of the range over one tile of <typeparamref name="TVectors"/> vectors at <paramref name="pixel"/>.</summary>
    private static void RunTile<TVec, TVectors>(in Work work, int pixel, in Activation activation)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        for (var block = work.FirstBlock; block < work.BlocksEnd && block->FirstChannel < work.ChannelEnd; block++)
        {
            nint offset = block->FirstChannel * work.Stride + pixel;
            float* residual = work.Residual == null ? null : work.Residual + offset;
            float* bias = work.Bias + block->FirstChannel;
            switch (block->Width)
            {
                case 4: MicroTile<TVec, TVectors, Four>(block, work.Input + pixel, work.Output + offset, residual, bias, work.Stride, activation); break;
                case 2: MicroTile<TVec, TVectors, Two>(block, work.Input + pixel, work.Output + offset, residual, bias, work.Stride, activation); break;
                case 1: MicroTile<TVec, TVectors, One>(block, work.Input + pixel, work.Output + offset, residual, bias, work.Stride, activation); break;
                default: throw new InvalidOperationException($"Block width {block->Width} is not one of 4, 2, 1.");
            }
        }
    }

    /// <summary>
    /// One block of <typeparamref name="TWidth"/> channels over <typeparamref name="TVectors"/> vectors of pixels.
    /// Accumulator aXY is channel X, vector Y; the constant type arguments let the JIT drop the unused ones.
    /// </summary>
    private static void MicroTile<TVec, TVectors, TWidth>(PointwiseBlock* block, float* input, float* output, float* residual, float* bias,
        nint stride, in Activation activation)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TWidth : struct, IConstant
    {
        int lanes = TVec.Count;
        bool v1 = TVectors.Value > 1, v2 = TVectors.Value > 2, v3 = TVectors.Value > 3;
        bool c1 = TWidth.Value > 1, c2 = TWidth.Value > 2, c3 = TWidth.Value > 3;

        TVec a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        a00 = a01 = a02 = a03 = TVec.Broadcast(bias[0]);
        a10 = a11 = a12 = a13 = c1 ? TVec.Broadcast(bias[1]) : default;
        a20 = a21 = a22 = a23 = c2 ? TVec.Broadcast(bias[2]) : default;
        a30 = a31 = a32 = a33 = c3 ? TVec.Broadcast(bias[3]) : default;

        float* w = block->Values;
        int* deltas = block->RowDeltas;
        float* row = input;
        for (int j = 0, rows = block->RowCount; j < rows; j++, w += TWidth.Value)
        {
            row += deltas[j] * stride;
            TVec x0 = TVec.Load(row);
            TVec x1 = v1 ? TVec.Load(row + lanes) : default;
            TVec x2 = v2 ? TVec.Load(row + 2 * lanes) : default;
            TVec x3 = v3 ? TVec.Load(row + 3 * lanes) : default;

            TVec w0 = TVec.Broadcast(w[0]);
            a00 = TVec.MultiplyAdd(w0, x0, a00);
            if (v1) a01 = TVec.MultiplyAdd(w0, x1, a01);
            if (v2) a02 = TVec.MultiplyAdd(w0, x2, a02);
            if (v3) a03 = TVec.MultiplyAdd(w0, x3, a03);
            if (c1)
            {
                TVec w1 = TVec.Broadcast(w[1]);
                a10 = TVec.MultiplyAdd(w1, x0, a10);
                if (v1) a11 = TVec.MultiplyAdd(w1, x1, a11);
                if (v2) a12 = TVec.MultiplyAdd(w1, x2, a12);
                if (v3) a13 = TVec.MultiplyAdd(w1, x3, a13);
            }
            if (c2)
            {
                TVec w2 = TVec.Broadcast(w[2]);
                a20 = TVec.MultiplyAdd(w2, x0, a20);
                if (v1) a21 = TVec.MultiplyAdd(w2, x1, a21);
                if (v2) a22 = TVec.MultiplyAdd(w2, x2, a22);
                if (v3) a23 = TVec.MultiplyAdd(w2, x3, a23);
            }
            if (c3)
            {
                TVec w3 = TVec.Broadcast(w[3]);
                a30 = TVec.MultiplyAdd(w3, x0, a30);
                if (v1) a31 = TVec.MultiplyAdd(w3, x1, a31);
                if (v2) a32 = TVec.MultiplyAdd(w3, x2, a32);
                if (v3) a33 = TVec.MultiplyAdd(w3, x3, a33);
            }
        }

        FinishRow<TVec, TVectors>(a00, a01, a02, a03, output, residual, activation);
        if (c1) FinishRow<TVec, TVectors>(a10, a11, a12, a13, output + stride, residual == null ? null : residual + stride, activation);
        if (c2) FinishRow<TVec, TVectors>(a20, a21, a22, a23, output + 2 * stride, residual == null ? null : residual + 2 * stride, activation);
        if (c3) FinishRow<TVec, TVectors>(a30, a31, a32, a33, output + 3 * stride, residual == null ? null : residual + 3 * stride, activation);
    }

    /// <summary>Epilogue of one channel's accumulators: + residual, activation, store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishRow<TVec, TVectors>(TVec a0, TVec a1, TVec a2, TVec a3, float* output, float* residual, in Activation activation)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        int lanes = TVec.Count;
        Finish(a0, output, residual, activation);
        if (TVectors.Value > 1) Finish(a1, output + lanes, residual == null ? null : residual + lanes, activation);
        if (TVectors.Value > 2) Finish(a2, output + 2 * lanes, residual == null ? null : residual + 2 * lanes, activation);
        if (TVectors.Value > 3) Finish(a3, output + 3 * lanes, residual == null ? null : residual + 3 * lanes, activation);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<TVec>(TVec sum, float* output, float* residual, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        if (residual != null) sum += TVec.Load(residual);
        VectorActivation.Apply(sum, activation).Store(output);
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
