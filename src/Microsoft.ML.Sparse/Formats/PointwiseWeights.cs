using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparse.Formats;

/// <summary>
/// The prepared weights of a 1x1 convolution / fully connected layer <c>W[outChannels, inChannels]</c> plus bias:
/// the sparse blocked format when the layer is sparse enough, the dense matrix otherwise.
/// </summary>
/// <remarks>
/// Both paths share one packed layout, a list of <see cref="PointwiseBlock"/>s. A block of B output channels stores the
/// input rows it reads (for the sparse path the union of its channels' nonzero inputs, for the dense path every input)
/// as pointer increments in rows, plus B weights per row, so the kernel's inner loop is
/// <c>row += delta * stride; acc[b] = fma(broadcast(w[b]), load(row), acc[b])</c>.
/// Blocks of the chosen width come first; the <c>outChannels % width</c> remainder channels use narrower blocks.
/// The sparse path cuts the input rows into chunks of <see cref="ChunkRows"/> and stores every block once per chunk
/// (chunk-major), so the kernel can walk all output channels over one chunk while that chunk's slab of the input
/// stays in L1, carrying partial sums in the output between chunks (see <see cref="Kernels.PointwiseKernel"/>).
/// Everything lives in one 64-byte aligned native allocation, freed by <see cref="Dispose"/> or the finalizer.
/// </remarks>
internal sealed unsafe class PointwiseWeights : IDisposable
{
    /// <summary>Sparse blocks are taken only when at least this fraction of their stored weights is nonzero (so explicit zeros cost at most ~10% extra MACs).</summary>
    public const float MinimumBlockFill = 0.9f;

    /// <summary>The block widths the sparse path chooses from, widest first.</summary>
    public static ReadOnlySpan<int> SparseBlockWidths => [4, 2, 1];

    /// <summary>Output channels per micro-tile of the dense path.</summary>
    public const int DenseBlockWidth = 4;

    private const int Alignment = 64;

    /// <summary>
    /// Row deltas are 16-bit (a delta never exceeds a chunk's rows), so no chunk holds more rows than this. Half the bytes
    /// of 32-bit deltas: a pruned network streams its 1x1 weights from beyond L2 every inference (10 MB of values and deltas
    /// for MobileNet v1 at 70%), and that traffic, not the FMAs, is what grows from one layer alone to the whole network.
    /// </summary>
    public const int MaxChunkRows = ushort.MaxValue + 1;

    private void* _memory;
    private readonly PointwiseBlock* _blocks;

    private PointwiseWeights(ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int inChannels, bool isSparse, int blockWidth,
        int chunkRows, NonZeroPattern pattern)
    {
        OutChannels = outChannels;
        InChannels = inChannels;
        IsSparse = isSparse;
        BlockWidth = blockWidth;
        ChunkRows = Math.Min(Math.Min(chunkRows, MaxChunkRows), inChannels);
        ChunkCount = (inChannels + ChunkRows - 1) / ChunkRows;
        NonZeroCount = pattern.NonZeroCount;

        // Size the one allocation: block table, bias, then each block's weights and row deltas.
        BlockCount = 0;
        long storedRows = 0, storedValues = 0;
        foreach (var (first, width) in BlockLayout(outChannels, blockWidth))
        {
            int rows = isSparse ? pattern.UnionRowCount(first, width) : inChannels;
            BlockCount++;
            storedRows += rows;
            storedValues += (long)rows * width;
        }
        StoredValueCount = storedValues;

        long blockBytes = AlignUp((long)ChunkCount * BlockCount * sizeof(PointwiseBlock));
        long biasBytes = AlignUp((long)outChannels * sizeof(float));
        long valueBytes = AlignUp(storedValues * sizeof(float));
        long deltaBytes = AlignUp(storedRows * sizeof(ushort));
        byte* memory = (byte*)NativeMemory.AlignedAlloc((nuint)(blockBytes + biasBytes + valueBytes + deltaBytes), Alignment);
        _memory = memory;
        _blocks = (PointwiseBlock*)memory;
        Bias = (float*)(memory + blockBytes);
        float* values = Values = (float*)(memory + blockBytes + biasBytes);
        ushort* deltas = (ushort*)(memory + blockBytes + biasBytes + valueBytes);

        for (int c = 0; c < outChannels; c++) Bias[c] = bias.IsEmpty ? 0f : bias[c];

        int blockIndex = 0;
        for (int chunkStart = 0; chunkStart < inChannels; chunkStart += ChunkRows)
        {
            int chunkEnd = Math.Min(inChannels, chunkStart + ChunkRows);
            foreach (var (first, width) in BlockLayout(outChannels, blockWidth))
            {
                int rows = 0, previousRow = chunkStart;
                for (int k = chunkStart; k < chunkEnd; k++)
                {
                    if (isSparse && !pattern.RowUsed(first, width, k)) continue;
                    deltas[rows] = (ushort)(k - previousRow);
                    previousRow = k;
                    for (int b = 0; b < width; b++) values[rows * width + b] = weights[(first + b) * inChannels + k];
                    rows++;
                }
                _blocks[blockIndex++] = new PointwiseBlock(first, width, chunkStart, rows, values, deltas);
                values += rows * width;
                deltas += rows;
            }
        }
    }

    /// <summary>Frees the native weights if the owner never disposed them.</summary>
    ~PointwiseWeights() => Free();

    /// <summary>Builds the layer's weights from a dense row-major matrix; chooses sparse vs dense and the block width.</summary>
    /// <param name="weights">W[outChannels, inChannels], row-major.</param>
    /// <param name="bias">outChannels biases, or empty for none.</param>
    /// <param name="outChannels">Rows of W.</param>
    /// <param name="inChannels">Columns of W.</param>
    /// <param name="sparseThreshold">The SpMM path runs when the fraction of zero weights is at least this (0 forces sparse, above 1 forces dense).</param>
    /// <param name="chunkRows">
    /// Input rows per chunk of the sparse path (<see cref="Kernels.PointwiseKernel.ChunkRows"/> sizes it for the cache);
    /// the default keeps all rows in one chunk. The dense path always uses one chunk: it reuses each loaded row for four
    /// output channels and is bound by arithmetic, not by the cache.
    /// </param>
    public static PointwiseWeights Create(ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int inChannels, float sparseThreshold,
        int chunkRows = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkRows);
        return Create(weights, bias, outChannels, inChannels, sparseThreshold, (_, _) => chunkRows);
    }

    /// <summary>
    /// As <see cref="Create(ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, float, int)"/>, with the sparse path's chunk rows
    /// chosen by <paramref name="chunkRowsFor"/> from the block width this zero pattern gets and its density (fraction of nonzeros).
    /// </summary>
    public static PointwiseWeights Create(ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int inChannels, float sparseThreshold,
        Func<int, float, int> chunkRowsFor)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outChannels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inChannels);
        ArgumentNullException.ThrowIfNull(chunkRowsFor);
        if (weights.Length != (long)outChannels * inChannels)
            throw new ArgumentException($"Expected {outChannels}x{inChannels} = {(long)outChannels * inChannels} weights, got {weights.Length}.", nameof(weights));
        if (!bias.IsEmpty && bias.Length != outChannels)
            throw new ArgumentException($"Expected {outChannels} biases (or none), got {bias.Length}.", nameof(bias));

        // One pass over W finds its zeros; the density, the block width and the packing below read the bits, not W.
        var pattern = new NonZeroPattern(weights, outChannels, inChannels);
        float density = (float)((double)pattern.NonZeroCount / weights.Length);
        bool isSparse = 1f - density >= sparseThreshold;
        if (!isSparse) return new PointwiseWeights(weights, bias, outChannels, inChannels, isSparse: false, DenseBlockWidth, int.MaxValue, pattern);
        int blockWidth = ChooseBlockWidth(pattern);
        int chunkRows = chunkRowsFor(blockWidth, density);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(chunkRows, nameof(chunkRowsFor));
        return new PointwiseWeights(weights, bias, outChannels, inChannels, isSparse: true, blockWidth, chunkRows, pattern);
    }

    /// <summary>
    /// The widest sparse block width whose blocks are at least <see cref="MinimumBlockFill"/> full on this zero pattern
    /// (stored weights include the explicit zeros a block keeps for its channels' union of inputs).
    /// </summary>
    public static int ChooseBlockWidth(ReadOnlySpan<float> weights, int outChannels, int inChannels) =>
        ChooseBlockWidth(new NonZeroPattern(weights, outChannels, inChannels));

    private static int ChooseBlockWidth(NonZeroPattern pattern)
    {
        foreach (int width in SparseBlockWidths)
        {
            long stored = 0;
            foreach (var (first, blockWidth) in BlockLayout(pattern.OutChannels, width))
                stored += (long)pattern.UnionRowCount(first, blockWidth) * blockWidth;
            if (pattern.NonZeroCount >= MinimumBlockFill * stored) return width;
        }
        return 1;
    }

    /// <summary>Output channels (rows of W).</summary>
    public int OutChannels { get; }

    /// <summary>Input channels (columns of W).</summary>
    public int InChannels { get; }

    /// <summary>Fraction of exact zeros in W.</summary>
    public float Sparsity => 1f - (float)((double)NonZeroCount / ((long)OutChannels * InChannels));

    /// <summary>True when the SpMM path runs.</summary>
    public bool IsSparse { get; }

    /// <summary>Output channels per block (the widest; remainder channels use narrower blocks).</summary>
    public int BlockWidth { get; }

    /// <summary>Channel ranges handed to <see cref="Kernels.PointwiseKernel.Run"/> must start at multiples of this (the block width).</summary>
    public int ChannelGranularity => BlockWidth;

    /// <summary>Human-readable kernel choice for Describe(), e.g. "SpMM block 4".</summary>
    public string KernelName => IsSparse ? $"SpMM block {BlockWidth}" : $"dense 1x1 ({BlockWidth} channels per tile)";

    /// <summary>Multiply-accumulates executed per pixel (nonzeros for sparse, Cout*Cin for dense).</summary>
    public long MacsPerPixel => StoredValueCount;

    /// <summary>Nonzero weights in W.</summary>
    public long NonZeroCount { get; }

    /// <summary>Weights stored (and multiplied per pixel): nonzeros plus the explicit zeros blocks keep; Cout*Cin when dense.</summary>
    public long StoredValueCount { get; }

    /// <summary>Blocks per chunk (every chunk holds each block once).</summary>
    public int BlockCount { get; }

    /// <summary>Input rows per chunk (the last chunk may hold fewer).</summary>
    public int ChunkRows { get; }

    /// <summary>Chunks the input rows are cut into: 1 for the dense path.</summary>
    public int ChunkCount { get; }

    /// <summary>The biases, one per output channel.</summary>
    internal float* Bias { get; }

    /// <summary>The first of the <see cref="StoredValueCount"/> stored weights, block after block (each block's Values points into them).</summary>
    internal float* Values { get; }

    /// <summary>
    /// The input row (channel) of each of the <see cref="StoredValueCount"/> stored weights, in their order: what scaling the
    /// weights per input channel (<see cref="Kernels.ElementwiseKernels.ScaleByIndex"/>) gathers by.
    /// </summary>
    internal int[] InputRowOfEachValue()
    {
        int[] rows = GC.AllocateArray<int>(checked((int)StoredValueCount), pinned: true);
        for (var block = _blocks; block < ChunkEnd(ChunkCount - 1); block++)
        {
            long at = block->Values - Values;
            int row = block->FirstRow;
            for (int j = 0; j < block->RowCount; j++)
            {
                row += block->RowDeltas[j];
                for (int b = 0; b < block->Width; b++) rows[at + (long)j * block->Width + b] = row;
            }
        }
        GC.KeepAlive(this);
        return rows;
    }

    /// <summary>In chunk <paramref name="chunk"/>, the block that starts at <paramref name="channel"/>, which must be a multiple of <see cref="ChannelGranularity"/>.</summary>
    internal PointwiseBlock* BlockAt(int chunk, int channel) => _blocks + (long)chunk * BlockCount + channel / BlockWidth;

    /// <summary>One past the last block of chunk <paramref name="chunk"/>.</summary>
    internal PointwiseBlock* ChunkEnd(int chunk) => _blocks + (long)(chunk + 1) * BlockCount;

    /// <summary>Unpacks the weights back to a dense row-major W[outChannels, inChannels] (for tests and diagnostics).</summary>
    public void ToDense(Span<float> destination)
    {
        if (destination.Length != (long)OutChannels * InChannels)
            throw new ArgumentException($"Expected room for {OutChannels}x{InChannels} weights, got {destination.Length}.", nameof(destination));
        destination.Clear();
        for (var block = _blocks; block < ChunkEnd(ChunkCount - 1); block++)
        {
            int row = block->FirstRow;
            for (int j = 0; j < block->RowCount; j++)
            {
                row += block->RowDeltas[j];
                for (int b = 0; b < block->Width; b++)
                    destination[(block->FirstChannel + b) * InChannels + row] = block->Values[j * block->Width + b];
            }
        }
        GC.KeepAlive(this);
    }

    /// <summary>Whether the native weights were freed.</summary>
    internal bool IsFreed => _memory == null;

    /// <summary>Frees the native weights now.</summary>
    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        NativeMemory.AlignedFree(_memory);
        _memory = null;
    }

    /// <summary>(first channel, width) of each block: full blocks of <paramref name="width"/>, then the remainder in halving widths.</summary>
    internal static IEnumerable<(int First, int Width)> BlockLayout(int outChannels, int width)
    {
        int channel = 0;
        for (; width >= 1; width /= 2)
            for (; channel + width <= outChannels; channel += width)
                yield return (channel, width);
    }

    /// <summary>
    /// W's nonzeros as one bit per weight, 64 input channels per word: a block's input rows are the OR of its channels'
    /// words. Choosing the block width scans every block layout, and packing walks each block's rows; on bits that is
    /// 1/64 of the work of re-reading W column by column, which made planning the slowest step of loading a model.
    /// </summary>
    private sealed class NonZeroPattern
    {
        private readonly ulong[] _bits;
        private readonly int _words;

        public NonZeroPattern(ReadOnlySpan<float> weights, int outChannels, int inChannels)
        {
            OutChannels = outChannels;
            _words = (inChannels + 63) / 64;
            _bits = new ulong[(long)outChannels * _words];
            long nonZeros = 0;
            for (int c = 0; c < outChannels; c++)
            {
                ReadOnlySpan<float> row = weights.Slice(c * inChannels, inChannels);
                Span<ulong> bits = _bits.AsSpan(c * _words, _words);
                for (int w = 0; w < _words; w++)
                {
                    ReadOnlySpan<float> part = row.Slice(w * 64, Math.Min(64, inChannels - w * 64));
                    ulong word = 0;
                    int k = 0;
                    if (Vector256.IsHardwareAccelerated)
                        for (; k + Vector256<float>.Count <= part.Length; k += Vector256<float>.Count)
                        {
                            // == 0 is true for +-0 and false for NaN, as the scalar test below.
                            uint zeros = Vector256.Equals(Vector256.Create(part.Slice(k, Vector256<float>.Count)), Vector256<float>.Zero).ExtractMostSignificantBits();
                            word |= (ulong)(~zeros & 0xFFu) << k;
                        }
                    for (; k < part.Length; k++)
                        if (part[k] != 0f) word |= 1UL << k;
                    bits[w] = word;
                    nonZeros += BitOperations.PopCount(word);
                }
            }
            NonZeroCount = nonZeros;
        }

        public int OutChannels { get; }

        public long NonZeroCount { get; }

        /// <summary>Whether any of channels [first, first + width) has a nonzero weight at input <paramref name="row"/>.</summary>
        public bool RowUsed(int first, int width, int row)
        {
            int word = row >> 6;
            ulong mask = 1UL << (row & 63);
            for (int b = 0; b < width; b++)
                if ((_bits[(long)(first + b) * _words + word] & mask) != 0) return true;
            return false;
        }

        /// <summary>Inputs any of channels [first, first + width) reads: the block's stored rows.</summary>
        public int UnionRowCount(int first, int width)
        {
            int rows = 0;
            for (int w = 0; w < _words; w++)
            {
                ulong union = 0;
                for (int b = 0; b < width; b++) union |= _bits[(long)(first + b) * _words + w];
                rows += BitOperations.PopCount(union);
            }
            return rows;
        }
    }

    private static long AlignUp(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;
}

/// <summary>One block of the packed 1x1 weights: <see cref="Width"/> output channels sharing one list of input rows.</summary>
internal readonly unsafe struct PointwiseBlock(int firstChannel, int width, int firstRow, int rowCount, float* values, ushort* rowDeltas)
{
    /// <summary>The block's first output channel.</summary>
    public readonly int FirstChannel = firstChannel;

    /// <summary>Output channels in the block.</summary>
    public readonly int Width = width;

    /// <summary>The first input row of the block's chunk: row deltas start from it.</summary>
    public readonly int FirstRow = firstRow;

    /// <summary>Input rows the block reads.</summary>
    public readonly int RowCount = rowCount;

    /// <summary>RowCount x Width weights, row after row.</summary>
    public readonly float* Values = values;

    /// <summary>Per row, its input channel minus the previous row's (the first is relative to <see cref="FirstRow"/>).</summary>
    public readonly ushort* RowDeltas = rowDeltas;
}
