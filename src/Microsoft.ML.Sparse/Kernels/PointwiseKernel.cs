using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Microsoft.ML.Sparse.Formats;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>The 1x1 convolution over CHW activations: SpMM (sparse weights x dense pixels) or the dense path.</summary>
/// <remarks>
/// Loop order as in the paper: pixel tiles outside, output channel blocks inside, and per block only its stored input
/// rows. Sparse weights are cut into chunks of input rows (<see cref="ChunkRows"/>): for each tile, every block walks
/// chunk 1, then every block walks chunk 2, and so on, so the input slab the blocks share (chunk rows x tile) stays in
/// L1 instead of streaming from L2 for each block; partial sums wait in the output between chunks (a store and a load
/// per block and chunk against one vector load per nonzero, and the same summation order as one chunk). A micro-tile
/// keeps block width x tile vectors accumulators in registers (up to 4 x 4; one-channel blocks, the usual case at random
/// sparsity, take row tiles of up to 16 vectors: a whole small plane at once, see <see cref="RowTile"/>, or
/// <see cref="WideTileVectors"/> at a time on larger ones), starts
/// them at bias + residual (the residual is read before anything is stored, so it may alias the output), and after
/// the last chunk applies the activation and stores. The dense path is the same micro-kernel over one chunk of blocks
/// that store every input row, i.e. a register-blocked GEMM with packed weights.
/// A range that is not a whole number of vectors ends with a tile whose last vector overlaps the previous one; only a
/// range narrower than one vector goes to the next narrower width, down to scalar. Nothing outside the range is read
/// or written, and the residual may alias the output.
/// </remarks>
internal static unsafe class PointwiseKernel
{
    /// <summary>With 32 vector registers a micro-tile can hold 4 x 4 accumulators; with 16 (AVX2) it takes 4 x 2.</summary>
    private static readonly bool WideRegisterFile = Avx512F.IsSupported || AdvSimd.IsSupported;

    /// <summary>Pixel vectors of the widest multi-channel micro-tile.</summary>
    private static readonly int TileVectors = WideRegisterFile ? 4 : 2;

    /// <summary>
    /// A chunk's input slab for the widest micro-tile fills three quarters of a 32 KiB L1, the rest left to the weights and
    /// partial sums streaming past. Zen 4, random pruning, 4-vector tiles: 512 -> 512 @ 14x14 went from 47 to 75 GFLOP/s at
    /// 70% and from 52 to 60 at 90%; 1024 -> 1024 @ 7x7 from 34 to 61 at 70%; 256 -> 256 @ 28x28 from 54 to 64-74.
    /// </summary>
    private const int ChunkSlabBytes = 32 * 1024;

    /// <summary>
    /// One-channel blocks on planes larger than a row tile (28x28, 56x56) walk them in row tiles of this many vectors:
    /// against 4-vector tiles the block's fixed costs are paid a third as often and twelve FMA chains run. Zen 4, v1 at
    /// 70%, per layer: 128 -> 128 @ 56x56 515-520 -> 448-458 us, 256 -> 256 @ 28x28 495-510 -> 451-453 (16-vector tiles
    /// measured the same; 12 leave 28x28 as three tiles and a 13-vector row tile).
    /// </summary>
    private const int WideTileVectors = 12;

    /// <summary>
    /// A row tile reloads and stores its 13 or so partial-sum vectors at every chunk, so its chunks are made long enough
    /// to hold about this many stored rows per block, between one and two <see cref="ChunkSlabBytes"/> of slab. Zen 4,
    /// 512 -> 512 @ 14x14, best slab measured: 32 KiB at 70% (39 rows, ~12 per block), 48 KiB at 80% (59 rows, ~12),
    /// 64 KiB at 90% (78 rows, ~8; a longer slab would leave L1).
    /// </summary>
    private const int RowTileRowsPerBlockChunk = 12;

    /// <summary>
    /// Input rows per chunk of sparse weights for kernels of <paramref name="width"/> on planes of <paramref name="planePixels"/>
    /// (see <see cref="PrepareWeights"/>): the chunk's slab of the widest micro-tile that will run fills
    /// <see cref="ChunkSlabBytes"/>; planes taken whole by the row tile get longer slabs the sparser the weights
    /// (<paramref name="density"/>, the fraction of nonzeros), see <see cref="RowTileRowsPerBlockChunk"/>.
    /// </summary>
    public static int ChunkRows(SimdWidth width, int planePixels = 0, int blockWidth = 0, float density = 1f)
    {
        int lanes = Lanes(width);
        var (rowVectors, tail) = RowTile(PixelsToCompute(planePixels, PlaneLayout.Padded(planePixels), width), lanes, blockWidth);
        if (rowVectors == 0 && TakesRowTiles(lanes, blockWidth) && planePixels >= (WideTileVectors + 4) * lanes)
            rowVectors = WideTileVectors;
        int rowBytes = ((rowVectors > 0 ? rowVectors : TileVectors) * lanes + tail) * sizeof(float);
        int rows = ChunkSlabBytes / rowBytes;
        if (rowVectors > 0)
            rows = (int)Math.Clamp(RowTileRowsPerBlockChunk / Math.Max(density, 1e-3f), rows, 2 * ChunkSlabBytes / rowBytes);
        return Math.Max(1, rows);
    }

    /// <summary>
    /// The weights of a 1x1 layer over planes of <paramref name="planePixels"/>, chunked for the micro-tile that will run
    /// on them (which depends on the plane, the block width the zero pattern gets and its density).
    /// </summary>
    public static PointwiseWeights PrepareWeights(ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int inChannels,
        int planePixels, float sparseThreshold, SimdWidth width) =>
        PointwiseWeights.Create(weights, bias, outChannels, inChannels, sparseThreshold,
            (blockWidth, density) => ChunkRows(width, planePixels, blockWidth, density));

    private static int Lanes(SimdWidth width) => SimdSupport.Resolve(width) switch
    {
        SimdWidth.Vector512 => 16,
        SimdWidth.Vector256 => 8,
        SimdWidth.Vector128 => 4,
        _ => 1,
    };

    /// <summary>
    /// The row tile that takes a whole range of <paramref name="pixels"/> at once: its whole vectors and its 4-lane tail
    /// (0 or 4), or (0, 0) when it does not apply. It needs one-channel blocks (random sparsity), 32 registers, and either
    /// 9-16 whole vectors or, on 16 lanes, 3-16 whole vectors and 4 pixels more (14x14 = 12 x 16 + 4; 7x7, rounded to 52
    /// in its padded plane, = 3 x 16 + 4). Against 4-vector tiles it has no leftover tile, pays the block's fixed costs
    /// (row list, bias, stores) once per plane instead of four times, and runs 13 independent FMA chains; the tail loads
    /// 16 bytes where a whole vector would load 64, and SpMM is bound by loads (Zen 4, 512 -> 512 @ 14x14 per layer:
    /// 477 -> 427 us at 70%, 331 -> 307 at 80%, 188 -> 177 at 90% with 13 whole vectors).
    /// </summary>
    internal static (int Vectors, int Tail) RowTile(int pixels, int lanes, int blockWidth)
    {
        if (!TakesRowTiles(lanes, blockWidth)) return (0, 0);
        int vectors = pixels / lanes, rest = pixels % lanes;
        if (rest == 0 && vectors is > 8 and <= 16) return (vectors, 0);
        if (lanes == 16 && rest == 4 && vectors is >= 3 and <= 16) return (vectors, 4);
        return (0, 0);
    }

    /// <summary>Row tiles (one accumulator per vector, up to 16) need one-channel blocks, vectors and 32 registers.</summary>
    private static bool TakesRowTiles(int lanes, int blockWidth) => WideRegisterFile && lanes > 1 && blockWidth == 1;

    /// <summary>
    /// The pixels a 1x1 layer computes on planes of <paramref name="planePixels"/> padded to <paramref name="planeStride"/>:
    /// whole padded planes (aligned vectors are cheaper than a shifted last one, and each pixel only ever feeds itself),
    /// except where the plane rounded up to 4 pixels is what a row tile with a 4-lane tail takes.
    /// </summary>
    public static int PixelsToCompute(int planePixels, int planeStride, SimdWidth width)
    {
        int withTail = (planePixels + 3) / 4 * 4;
        return withTail <= planeStride && RowTile(withTail, Lanes(width), blockWidth: 1).Tail > 0 ? withTail : planeStride;
    }

    /// <summary>
    /// For output channels [channelStart, channelEnd) and pixels [pixelStart, pixelStart + pixelCount):
    /// <c>output[c * strides.Output + p] = activation(sum_k W[c,k] * input[k * strides.Input + p] + bias[c] + residual[c * strides.Residual + p])</c>.
    /// <paramref name="residual"/> may be null. The strides are the floats between channel planes of each operand (H*W of
    /// the layer, or more where the plan pads planes to whole cache lines). Never reads or writes outside the given pixel
    /// and channel ranges.
    /// </summary>
    /// <remarks>
    /// <paramref name="values"/>, when not null, replaces the stored weights: <see cref="PointwiseWeights.StoredValueCount"/>
    /// floats laid out as theirs (the weights scaled per input channel, see <see cref="SqueezeExcitationFolding"/>).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(PointwiseWeights weights, float* input, float* output, float* residual, PlaneStrides strides,
        int pixelStart, int pixelCount, int channelStart, int channelEnd, in Activation activation, SimdWidth width, float* values = null)
    {
        Validate(weights, input, output, residual, strides, pixelStart, pixelCount, channelStart, channelEnd);
        SimdWidth widest = SimdSupport.Resolve(width);
        if (widest is not (SimdWidth.Scalar or SimdWidth.Vector128 or SimdWidth.Vector256 or SimdWidth.Vector512))
            throw new ArgumentOutOfRangeException(nameof(width), width, "Supported widths: Auto, Scalar, Vector128, Vector256, Vector512.");
        var widths = new Widths(new Work(weights, input, output, residual, strides, channelStart, channelEnd, activation, values),
            pixelStart, pixelStart + pixelCount, widest);
        // The activation is a type from here on, applied to the accumulators before they are stored.
        ActivationPass.DispatchClampsAsClip(ref widths, activation);
        // The native weights must outlive the loops; the finalizer would free them once `weights` is dead.
        GC.KeepAlive(weights);
    }

    /// <summary>The widths from the widest allowed down to scalar, each taking what is left of the pixel range.</summary>
    private readonly struct Widths(Work work, int pixel, int end, SimdWidth widest) : IActivationConsumer
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int next = pixel;
            switch (widest)
            {
                case SimdWidth.Vector512:
                    next = RunTiles<Float512, TFunction>(work, next, end);
                    goto case SimdWidth.Vector256;
                case SimdWidth.Vector256:
                    next = RunTiles<Float256, TFunction>(work, next, end);
                    goto case SimdWidth.Vector128;
                case SimdWidth.Vector128:
                    next = RunTiles<Float128, TFunction>(work, next, end);
                    goto default;
                default:
                    RunTiles<Scalar, TFunction>(work, next, end);
                    break;
            }
        }
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
        int channelStart, int channelEnd, Activation activation, float* values)
    {
        /// <summary>Bytes from the stored weights to the ones to use (0, or to a scaled copy): one add per block.</summary>
        public readonly nint ValuesShift = values == null ? 0 : (nint)((byte*)values - (byte*)weights.Values);

        /// <summary>Chunk 0's first block of the channel range and one past chunk 0's last block; chunk j is BlocksPerChunk further on.</summary>
        public readonly PointwiseBlock* FirstBlock = weights.BlockAt(0, channelStart), FirstChunkEnd = weights.ChunkEnd(0);
        public readonly nint BlocksPerChunk = weights.BlockCount;
        public readonly int ChunkCount = weights.ChunkCount;
        public readonly float* Bias = weights.Bias;
        public readonly float* Input = input;
        public readonly float* Output = output;
        public readonly float* Residual = residual;
        public readonly nint InputStride = strides.Input, OutputStride = strides.Output, ResidualStride = strides.Residual;
        public readonly int InChannels = weights.InChannels;
        public readonly int BlockWidth = weights.IsSparse ? weights.BlockWidth : 0;
        public readonly int ChannelEnd = channelEnd;

        /// <summary>The activation function's parameters (see <see cref="ActivationPass.Parameters"/>).</summary>
        public readonly float Alpha = ActivationPass.Parameters(activation).Alpha, Beta = ActivationPass.Parameters(activation).Beta;
    }

    /// <summary>
    /// Covers [<paramref name="pixel"/>, <paramref name="end"/>) with tiles of <typeparamref name="TVec"/> vectors; returns
    /// <paramref name="pixel"/> unchanged when fewer than one vector of pixels is left (a narrower width takes them).
    /// The last tile may shift its last vector back so it overlaps the one before instead of reading past the range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int RunTiles<TVec, TFunction>(in Work work, int pixel, int end)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int lanes = TVec.Count;
        if (end - pixel < lanes) return pixel;
        if (TakesRowTiles(lanes, work.BlockWidth))
        {
            // Planes larger than a row tile: row tiles of WideTileVectors first; a range (or what is left of it) that one
            // row tile holds goes to it whole.
            for (; end - pixel >= (WideTileVectors + 4) * lanes; pixel += WideTileVectors * lanes)
                RunRowTile<TVec, TFunction>(work, pixel, WideTileVectors);
            var (rowVectors, tail) = RowTile(end - pixel, lanes, work.BlockWidth);
            if (rowVectors > 0)
            {
                if (tail > 0) RunRowTileWithTail<TVec, TFunction>(work, pixel, rowVectors);
                else RunRowTile<TVec, TFunction>(work, pixel, rowVectors);
                return end;
            }
        }
        int maxVectors = TileVectors;
        for (; end - pixel >= (maxVectors + 1) * lanes; pixel += maxVectors * lanes)
            RunTile<TVec, TFunction>(work, pixel, maxVectors, maxVectors * lanes);
        if (end - pixel > maxVectors * lanes)
        {
            // Between maxVectors and maxVectors + 1 vectors left: half a tile now, the rest in one overlapping tile.
            RunTile<TVec, TFunction>(work, pixel, maxVectors / 2, maxVectors / 2 * lanes);
            pixel += maxVectors / 2 * lanes;
        }
        RunTile<TVec, TFunction>(work, pixel, (end - pixel + lanes - 1) / lanes, end - pixel);
        return end;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunRowTile<TVec, TFunction>(in Work work, int pixel, int vectors)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int pixels = vectors * TVec.Count;
        switch (vectors)
        {
            case 9: RunTile<TVec, Nine, TFunction>(work, pixel, pixels); break;
            case 10: RunTile<TVec, Ten, TFunction>(work, pixel, pixels); break;
            case 11: RunTile<TVec, Eleven, TFunction>(work, pixel, pixels); break;
            case 12: RunTile<TVec, Twelve, TFunction>(work, pixel, pixels); break;
            case 13: RunTile<TVec, Thirteen, TFunction>(work, pixel, pixels); break;
            case 14: RunTile<TVec, Fourteen, TFunction>(work, pixel, pixels); break;
            case 15: RunTile<TVec, Fifteen, TFunction>(work, pixel, pixels); break;
            case 16: RunTile<TVec, Sixteen, TFunction>(work, pixel, pixels); break;
            default: throw new ArgumentOutOfRangeException(nameof(vectors), vectors, "The row tile holds 9 to 16 vectors.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunRowTileWithTail<TVec, TFunction>(in Work work, int pixel, int vectors)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int pixels = vectors * TVec.Count + 4;
        switch (vectors)
        {
            case 3: RunTile<TVec, WithTail<Three>, TFunction>(work, pixel, pixels); break;
            case 4: RunTile<TVec, WithTail<Four>, TFunction>(work, pixel, pixels); break;
            case 5: RunTile<TVec, WithTail<Five>, TFunction>(work, pixel, pixels); break;
            case 6: RunTile<TVec, WithTail<Six>, TFunction>(work, pixel, pixels); break;
            case 7: RunTile<TVec, WithTail<Seven>, TFunction>(work, pixel, pixels); break;
            case 8: RunTile<TVec, WithTail<Eight>, TFunction>(work, pixel, pixels); break;
            case 9: RunTile<TVec, WithTail<Nine>, TFunction>(work, pixel, pixels); break;
            case 10: RunTile<TVec, WithTail<Ten>, TFunction>(work, pixel, pixels); break;
            case 11: RunTile<TVec, WithTail<Eleven>, TFunction>(work, pixel, pixels); break;
            case 12: RunTile<TVec, WithTail<Twelve>, TFunction>(work, pixel, pixels); break;
            case 13: RunTile<TVec, WithTail<Thirteen>, TFunction>(work, pixel, pixels); break;
            case 14: RunTile<TVec, WithTail<Fourteen>, TFunction>(work, pixel, pixels); break;
            case 15: RunTile<TVec, WithTail<Fifteen>, TFunction>(work, pixel, pixels); break;
            case 16: RunTile<TVec, WithTail<Sixteen>, TFunction>(work, pixel, pixels); break;
            default: throw new ArgumentOutOfRangeException(nameof(vectors), vectors, "The row tile with a tail holds 3 to 16 vectors.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunTile<TVec, TFunction>(in Work work, int pixel, int vectors, int pixels)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        switch (vectors)
        {
            case 4: RunTile<TVec, Four, TFunction>(work, pixel, pixels); break;
            case 3: RunTile<TVec, Three, TFunction>(work, pixel, pixels); break;
            case 2: RunTile<TVec, Two, TFunction>(work, pixel, pixels); break;
            default: RunTile<TVec, One, TFunction>(work, pixel, pixels); break;
        }
    }

    /// <summary>A block with no rows in a middle chunk would only reload and restore its partial sums.</summary>
    private static bool Skips<TStart>(PointwiseBlock* block, bool last) where TStart : struct, IStart =>
        block->RowCount == 0 && !TStart.StartsAtBias && !last;

    /// <summary>
    /// How a micro-tile starts its sums: at the bias (+ residual) in the first chunk, or at the partial sums the previous
    /// chunk left in the output. A type, not a flag, so each variant compiles to straight code: a run-time choice merged
    /// into the accumulators made the JIT copy every FMA result between registers (3 instructions per FMA instead of 1).
    /// </summary>
    private interface IStart
    {
        static abstract bool StartsAtBias { get; }
        static abstract bool AddsResidual { get; }
    }

    private readonly struct FromBias : IStart
    {
        public static bool StartsAtBias => true;
        public static bool AddsResidual => false;
    }

    private readonly struct FromBiasAndResidual : IStart
    {
        public static bool StartsAtBias => true;
        public static bool AddsResidual => true;
    }

    private readonly struct FromPartialSums : IStart
    {
        public static bool StartsAtBias => false;
        public static bool AddsResidual => false;
    }

    /// <summary>
    /// One one-channel block over <typeparamref name="TVectors"/> (3-16) whole vectors of pixels and, when the type says so,
    /// a 4-lane tail after them: a load and an FMA per vector and stored weight, one accumulator per vector (the JIT drops
    /// those past the count). The tail is 16-lane only; its weight is the low lanes of the broadcast one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroTileRow<TVec, TVectors, TStart, TFunction>(in Work work, PointwiseBlock* block, int pixel, bool last)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TStart : struct, IStart where TFunction : struct, IActivationFunction
    {
        nint stride = work.InputStride, n = TVec.Count, tailAt = TVectors.Value * n;
        bool hasTail = TVectors.TailLanes > 0 && typeof(TVec) == typeof(Float512);
        float* output = work.Output + block->FirstChannel * work.OutputStride + pixel;
        TVec a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;
        Float128 t;
        if (TStart.StartsAtBias)
        {
            float bias = work.Bias[block->FirstChannel];
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = TVec.Broadcast(bias);
            t = Float128.Broadcast(bias);
            if (TStart.AddsResidual)
            {
                float* residual = work.Residual + block->FirstChannel * work.ResidualStride + pixel;
                AddEight<TVec, TVectors>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, residual, first: 0);
                AddEight<TVec, TVectors>(ref a8, ref a9, ref a10, ref a11, ref a12, ref a13, ref a14, ref a15, residual + 8 * n, first: 8);
                if (hasTail) t += Float128.Load(residual + tailAt);
            }
        }
        else
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = default;
            AddEight<TVec, TVectors>(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7, output, first: 0);
            AddEight<TVec, TVectors>(ref a8, ref a9, ref a10, ref a11, ref a12, ref a13, ref a14, ref a15, output + 8 * n, first: 8);
            t = hasTail ? Float128.Load(output + tailAt) : default;
        }

        float* w = (float*)((byte*)block->Values + work.ValuesShift);
        float* row = work.Input + block->FirstRow * stride + pixel;
        for (ushort* delta = block->RowDeltas, end = delta + block->RowCount; delta < end; delta++, w++)
        {
            row += *delta * stride;
            TVec weight = TVec.Broadcast(*w);
            a0 = MultiplyAddLoad(row, weight, a0);
            if (TVectors.Value > 1) a1 = MultiplyAddLoad(row + n, weight, a1);
            if (TVectors.Value > 2) a2 = MultiplyAddLoad(row + 2 * n, weight, a2);
            if (TVectors.Value > 3) a3 = MultiplyAddLoad(row + 3 * n, weight, a3);
            if (TVectors.Value > 4) a4 = MultiplyAddLoad(row + 4 * n, weight, a4);
            if (TVectors.Value > 5) a5 = MultiplyAddLoad(row + 5 * n, weight, a5);
            if (TVectors.Value > 6) a6 = MultiplyAddLoad(row + 6 * n, weight, a6);
            if (TVectors.Value > 7) a7 = MultiplyAddLoad(row + 7 * n, weight, a7);
            if (TVectors.Value > 8) a8 = MultiplyAddLoad(row + 8 * n, weight, a8);
            if (TVectors.Value > 9) a9 = MultiplyAddLoad(row + 9 * n, weight, a9);
            if (TVectors.Value > 10) a10 = MultiplyAddLoad(row + 10 * n, weight, a10);
            if (TVectors.Value > 11) a11 = MultiplyAddLoad(row + 11 * n, weight, a11);
            if (TVectors.Value > 12) a12 = MultiplyAddLoad(row + 12 * n, weight, a12);
            if (TVectors.Value > 13) a13 = MultiplyAddLoad(row + 13 * n, weight, a13);
            if (TVectors.Value > 14) a14 = MultiplyAddLoad(row + 14 * n, weight, a14);
            if (TVectors.Value > 15) a15 = MultiplyAddLoad(row + 15 * n, weight, a15);
            if (hasTail) t = Float128.MultiplyAdd(Float128.Load(row + tailAt), LowLanes(weight), t);
        }

        if (last && ActivationPass.InRegisters<TFunction, TVec>())
        {
            // Activated and stored one accumulator at a time, so each frees its register for the next one's temporaries.
            float alpha = work.Alpha, beta = work.Beta;
            if (hasTail) TFunction.Apply(t, alpha, beta).Store(output + tailAt);
            StoreEight<TVec, TVectors, TFunction>(a0, a1, a2, a3, a4, a5, a6, a7, output, alpha, beta, first: 0);
            StoreEight<TVec, TVectors, TFunction>(a8, a9, a10, a11, a12, a13, a14, a15, output + 8 * n, alpha, beta, first: 8);
            return;
        }
        StoreEight<TVec, TVectors, IdentityFunction>(a0, a1, a2, a3, a4, a5, a6, a7, output, 0f, 0f, first: 0);
        StoreEight<TVec, TVectors, IdentityFunction>(a8, a9, a10, a11, a12, a13, a14, a15, output + 8 * n, 0f, 0f, first: 8);
        if (hasTail) t.Store(output + tailAt);
        if (last)
            ActivationPass.ApplyStored<TVec, TFunction>(output, (int)tailAt + (hasTail ? TVectors.TailLanes : 0), work.Alpha, work.Beta);
    }

    /// <summary>The four low lanes of a 16-lane vector (a register alias, no instruction).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Float128 LowLanes<TVec>(TVec vector) where TVec : struct, IFloatVector<TVec> =>
        Unsafe.BitCast<Vector128<float>, Float128>(Unsafe.BitCast<TVec, Vector512<float>>(vector).GetLower().GetLower());

    /// <summary>All channel blocks of the range over the <paramref name="pixels"/> at <paramref name="pixel"/>, held in <typeparamref name="TVectors"/> vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunTile<TVec, TVectors, TFunction>(in Work work, int pixel, int pixels)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TFunction : struct, IActivationFunction
    {
        for (int chunk = 0; chunk < work.ChunkCount; chunk++)
        {
            if (chunk > 0) RunChunk<TVec, TVectors, FromPartialSums, TFunction>(work, pixel, pixels, chunk);
            else if (work.Residual != null) RunChunk<TVec, TVectors, FromBiasAndResidual, TFunction>(work, pixel, pixels, chunk);
            else RunChunk<TVec, TVectors, FromBias, TFunction>(work, pixel, pixels, chunk);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunChunk<TVec, TVectors, TStart, TFunction>(in Work work, int pixel, int pixels, int chunk)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TStart : struct, IStart where TFunction : struct, IActivationFunction
    {
        bool last = chunk == work.ChunkCount - 1;
        for (var block = work.FirstBlock + chunk * work.BlocksPerChunk; block < work.FirstChunkEnd + chunk * work.BlocksPerChunk && block->FirstChannel < work.ChannelEnd; block++)
        {
            if (Skips<TStart>(block, last)) continue;
            if (TVectors.Value > 4 || TVectors.TailLanes > 0)
            {
                // Row tiles hold one-channel blocks only (random sparsity), one accumulator per vector.
                if (block->Width != 1) throw new InvalidOperationException($"Block width {block->Width} cannot run in a row tile.");
                MicroTileRow<TVec, TVectors, TStart, TFunction>(work, block, pixel, last);
                continue;
            }
            switch (block->Width)
            {
                case 4: MicroTile<TVec, TVectors, Four, TStart, TFunction>(work, block, pixel, pixels, last); break;
                case 2: MicroTile<TVec, TVectors, Two, TStart, TFunction>(work, block, pixel, pixels, last); break;
                case 1: MicroTile<TVec, TVectors, One, TStart, TFunction>(work, block, pixel, pixels, last); break;
                default: throw new InvalidOperationException($"Block width {block->Width} is not one of 4, 2, 1.");
            }
        }
    }

    /// <summary>
    /// One block of <typeparamref name="TWidth"/> channels over <paramref name="pixels"/> pixels held in <typeparamref name="TVectors"/>
    /// vectors (the last one shifted back to end at <paramref name="pixels"/> when they are not a whole number of vectors).
    /// Accumulator aXY is channel X, vector Y; the constant type arguments let the JIT drop the unused ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroTile<TVec, TVectors, TWidth, TStart, TFunction>(in Work work, PointwiseBlock* block, int pixel, int pixels, bool last)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TWidth : struct, IConstant where TStart : struct, IStart
        where TFunction : struct, IActivationFunction
    {
        nint stride = work.InputStride, outputStride = work.OutputStride;
        float* output = work.Output + block->FirstChannel * outputStride + pixel;
        int lastVector = pixels - TVec.Count;
        nint o1 = Math.Min(TVec.Count, lastVector), o2 = Math.Min(2 * TVec.Count, lastVector), o3 = Math.Min(3 * TVec.Count, lastVector);
        bool v1 = TVectors.Value > 1, v2 = TVectors.Value > 2, v3 = TVectors.Value > 3;
        bool c1 = TWidth.Value > 1, c2 = TWidth.Value > 2, c3 = TWidth.Value > 3;

        TVec a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
        if (TStart.StartsAtBias)
        {
            float* bias = work.Bias + block->FirstChannel;
            a00 = a01 = a02 = a03 = TVec.Broadcast(bias[0]);
            a10 = a11 = a12 = a13 = c1 ? TVec.Broadcast(bias[1]) : default;
            a20 = a21 = a22 = a23 = c2 ? TVec.Broadcast(bias[2]) : default;
            a30 = a31 = a32 = a33 = c3 ? TVec.Broadcast(bias[3]) : default;
            // Every residual load comes before any store, so the residual may be the output buffer itself.
            if (TStart.AddsResidual)
            {
                nint residualStride = work.ResidualStride;
                float* residual = work.Residual + block->FirstChannel * residualStride + pixel;
                AddRow<TVec, TVectors>(ref a00, ref a01, ref a02, ref a03, residual, o1, o2, o3);
                if (c1) AddRow<TVec, TVectors>(ref a10, ref a11, ref a12, ref a13, residual + residualStride, o1, o2, o3);
                if (c2) AddRow<TVec, TVectors>(ref a20, ref a21, ref a22, ref a23, residual + 2 * residualStride, o1, o2, o3);
                if (c3) AddRow<TVec, TVectors>(ref a30, ref a31, ref a32, ref a33, residual + 3 * residualStride, o1, o2, o3);
            }
        }
        else
        {
            // The partial sums of the chunks before (the overlapping last vector reloads equal values).
            a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = default;
            AddRow<TVec, TVectors>(ref a00, ref a01, ref a02, ref a03, output, o1, o2, o3);
            if (c1) AddRow<TVec, TVectors>(ref a10, ref a11, ref a12, ref a13, output + outputStride, o1, o2, o3);
            if (c2) AddRow<TVec, TVectors>(ref a20, ref a21, ref a22, ref a23, output + 2 * outputStride, o1, o2, o3);
            if (c3) AddRow<TVec, TVectors>(ref a30, ref a31, ref a32, ref a33, output + 3 * outputStride, o1, o2, o3);
        }

        float* w = (float*)((byte*)block->Values + work.ValuesShift);
        float* row = work.Input + block->FirstRow * stride + pixel;
        for (ushort* delta = block->RowDeltas, end = delta + block->RowCount; delta < end; delta++, w += TWidth.Value)
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

        if (last && ActivationPass.InRegisters<TFunction, TVec>())
        {
            float alpha = work.Alpha, beta = work.Beta;
            ActivateRow<TVec, TVectors, TFunction>(ref a00, ref a01, ref a02, ref a03, alpha, beta);
            if (c1) ActivateRow<TVec, TVectors, TFunction>(ref a10, ref a11, ref a12, ref a13, alpha, beta);
            if (c2) ActivateRow<TVec, TVectors, TFunction>(ref a20, ref a21, ref a22, ref a23, alpha, beta);
            if (c3) ActivateRow<TVec, TVectors, TFunction>(ref a30, ref a31, ref a32, ref a33, alpha, beta);
        }
        StoreRow<TVec, TVectors>(a00, a01, a02, a03, output, o1, o2, o3);
        if (c1) StoreRow<TVec, TVectors>(a10, a11, a12, a13, output + outputStride, o1, o2, o3);
        if (c2) StoreRow<TVec, TVectors>(a20, a21, a22, a23, output + 2 * outputStride, o1, o2, o3);
        if (c3) StoreRow<TVec, TVectors>(a30, a31, a32, a33, output + 3 * outputStride, o1, o2, o3);
        if (last && !ActivationPass.InRegisters<TFunction, TVec>())
            for (int c = 0; c < TWidth.Value; c++)
                ActivationPass.ApplyStored<TVec, TFunction>(output + c * outputStride, pixels, work.Alpha, work.Beta);

    }

    /// <summary>
    /// <c>addend + load(x) * weight</c>. For Vector512 written against the intrinsic directly so the JIT folds the load into
    /// the FMA and accumulates in place: through the wrapper, with each loaded vector used once (the row tile), it put
    /// every result in the loaded vector's register and copied it back (three instructions per FMA).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec MultiplyAddLoad<TVec>(float* x, TVec weight, TVec addend) where TVec : struct, IFloatVector<TVec>
    {
        if (typeof(TVec) == typeof(Float512))
            return Unsafe.BitCast<Vector512<float>, TVec>(Vector512.FusedMultiplyAdd(Vector512.Load(x),
                Unsafe.BitCast<TVec, Vector512<float>>(weight), Unsafe.BitCast<TVec, Vector512<float>>(addend)));
        return TVec.MultiplyAdd(TVec.Load(x), weight, addend);
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
    private static void ActivateRow<TVec, TVectors, TFunction>(ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TFunction : struct, IActivationFunction
    {
        a0 = TFunction.Apply(a0, alpha, beta);
        if (TVectors.Value > 1) a1 = TFunction.Apply(a1, alpha, beta);
        if (TVectors.Value > 2) a2 = TFunction.Apply(a2, alpha, beta);
        if (TVectors.Value > 3) a3 = TFunction.Apply(a3, alpha, beta);
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

    /// <summary>
    /// Accumulators <paramref name="first"/> to first + 7 of a row tile (those within its vector count) += the vectors at
    /// <paramref name="p"/>; <paramref name="first"/> is a literal at every call, so the JIT folds the conditions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddEight<TVec, TVectors>(ref TVec a0, ref TVec a1, ref TVec a2, ref TVec a3, ref TVec a4, ref TVec a5, ref TVec a6,
        ref TVec a7, float* p, int first) where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant
    {
        nint n = TVec.Count;
        if (TVectors.Value > first) a0 += TVec.Load(p);
        if (TVectors.Value > first + 1) a1 += TVec.Load(p + n);
        if (TVectors.Value > first + 2) a2 += TVec.Load(p + 2 * n);
        if (TVectors.Value > first + 3) a3 += TVec.Load(p + 3 * n);
        if (TVectors.Value > first + 4) a4 += TVec.Load(p + 4 * n);
        if (TVectors.Value > first + 5) a5 += TVec.Load(p + 5 * n);
        if (TVectors.Value > first + 6) a6 += TVec.Load(p + 6 * n);
        if (TVectors.Value > first + 7) a7 += TVec.Load(p + 7 * n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreEight<TVec, TVectors, TFunction>(TVec a0, TVec a1, TVec a2, TVec a3, TVec a4, TVec a5, TVec a6, TVec a7, float* p,
        float alpha, float beta, int first) where TVec : struct, IFloatVector<TVec> where TVectors : struct, IConstant where TFunction : struct, IActivationFunction
    {
        nint n = TVec.Count;
        if (TVectors.Value > first) TFunction.Apply(a0, alpha, beta).Store(p);
        if (TVectors.Value > first + 1) TFunction.Apply(a1, alpha, beta).Store(p + n);
        if (TVectors.Value > first + 2) TFunction.Apply(a2, alpha, beta).Store(p + 2 * n);
        if (TVectors.Value > first + 3) TFunction.Apply(a3, alpha, beta).Store(p + 3 * n);
        if (TVectors.Value > first + 4) TFunction.Apply(a4, alpha, beta).Store(p + 4 * n);
        if (TVectors.Value > first + 5) TFunction.Apply(a5, alpha, beta).Store(p + 5 * n);
        if (TVectors.Value > first + 6) TFunction.Apply(a6, alpha, beta).Store(p + 6 * n);
        if (TVectors.Value > first + 7) TFunction.Apply(a7, alpha, beta).Store(p + 7 * n);
    }
}

/// <summary>Floats between consecutive channel planes of a 1x1 layer's input, output and residual.</summary>
internal readonly record struct PlaneStrides(int Input, int Output, int Residual)
{
    /// <summary>Every operand's planes packed back to back: <paramref name="pixels"/> floats apart.</summary>
    public static PlaneStrides Dense(int pixels) => new(pixels, pixels, pixels);
}
