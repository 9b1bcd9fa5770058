using Microsoft.ML.Sparse.Formats;

namespace Microsoft.ML.Sparse.Tests.Kernels;

public class PointwiseWeightsTests
{
    [Theory]
    [InlineData(1, 1, 0f)]
    [InlineData(7, 5, 0.5f)]
    [InlineData(17, 19, 0.9f)]
    [InlineData(64, 48, 0.99f)]
    [InlineData(9, 3, 1f)]
    public void RoundTripsToDenseWithCounts(int outChannels, int inChannels, float sparsity)
    {
        var layer = PointwiseLayer.Random(new Random(outChannels * 31 + inChannels), outChannels, inChannels, sparsity);
        long nonZeros = layer.Weights.Count(w => w != 0f);
        foreach (float threshold in new[] { PointwiseKernelTests.ForceSparse, PointwiseKernelTests.ForceDense })
        {
            using var weights = layer.Prepare(threshold);
            var dense = new float[outChannels * inChannels];
            weights.ToDense(dense);
            Assert.Equal(layer.Weights, dense);
            Assert.Equal(outChannels, weights.OutChannels);
            Assert.Equal(inChannels, weights.InChannels);
            Assert.Equal(nonZeros, weights.NonZeroCount);
            Assert.Equal(1f - (float)nonZeros / (outChannels * inChannels), weights.Sparsity, 1e-6f);
            Assert.Equal(threshold == PointwiseKernelTests.ForceSparse, weights.IsSparse);
            Assert.Equal(weights.StoredValueCount, weights.MacsPerPixel);
            if (weights.IsSparse)
            {
                // Explicit zeros inside blocks cost at most 1 / MinimumBlockFill extra.
                Assert.InRange(weights.StoredValueCount, nonZeros, (long)Math.Ceiling(nonZeros / PointwiseWeights.MinimumBlockFill));
                Assert.StartsWith("SpMM block", weights.KernelName);
            }
            else
            {
                Assert.Equal((long)outChannels * inChannels, weights.StoredValueCount);
                Assert.Equal(PointwiseWeights.DenseBlockWidth, weights.BlockWidth);
            }
        }
    }

    /// <summary>
    /// The zero pattern is read one bit per weight in words of 64 inputs, 8 at a time where SIMD is available: rows that end
    /// mid-word and mid-vector, -0 (a zero), NaN, infinities and denormals (nonzeros) must all count and pack as a
    /// plain scan of W says, for every block width.
    /// </summary>
    [Theory]
    [InlineData(5, 1)]
    [InlineData(6, 63)]
    [InlineData(9, 64)]
    [InlineData(13, 65)]
    [InlineData(8, 131)]
    [InlineData(3, 200)]
    public void ZeroPatternOfSpecialValuesAndRaggedRowsMatchesAPlainScan(int outChannels, int inChannels)
    {
        var random = new Random(outChannels * 1000 + inChannels);
        float[] specials = [0f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -float.Epsilon, 1e-30f];
        var weights = new float[outChannels * inChannels];
        // Whole zero blocks of 4 channels here and there, so every block width can be chosen.
        for (int i = 0; i < weights.Length; i++)
            weights[i] = random.NextDouble() < 0.6 ? (random.Next(2) == 0 ? 0f : -0f)
                : random.NextDouble() < 0.3 ? specials[random.Next(specials.Length)] : (float)(random.NextDouble() * 2 - 1);
        long nonZeros = weights.Count(w => w != 0f);
        using var packed = PointwiseWeights.Create(weights, [], outChannels, inChannels, PointwiseKernelTests.ForceSparse);
        Assert.Equal(nonZeros, packed.NonZeroCount);
        var dense = new float[weights.Length];
        packed.ToDense(dense);
        for (int i = 0; i < weights.Length; i++)
            Assert.True(weights[i] == 0f ? dense[i] == 0f : BitConverter.SingleToInt32Bits(weights[i]) == BitConverter.SingleToInt32Bits(dense[i]), $"weight {i}: {weights[i]} came back as {dense[i]}");

        // Stored rows of a block = inputs where any of its channels is nonzero, as ChooseBlockWidth counts them.
        int width = packed.BlockWidth;
        long expectedStored = 0;
        foreach (var (first, blockWidth) in PointwiseWeights.BlockLayout(outChannels, width))
            for (int k = 0; k < inChannels; k++)
                if (Enumerable.Range(first, blockWidth).Any(c => weights[c * inChannels + k] != 0f)) expectedStored += blockWidth;
        Assert.Equal(expectedStored, packed.StoredValueCount);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(16)]
    [InlineData(47)]
    [InlineData(48)]
    [InlineData(1000)]
    public void ChunkedSparseWeightsRoundTripWithTheSameStoredValues(int chunkRows)
    {
        foreach (int blockWidth in new[] { 4, 1 })
        {
            var layer = PointwiseLayer.BlockStructured(new Random(chunkRows * 7 + blockWidth), 23, 48, blockWidth, 0.8f);
            using var whole = layer.Prepare(PointwiseKernelTests.ForceSparse);
            using var chunked = PointwiseWeights.Create(layer.Weights, layer.Bias, 23, 48, PointwiseKernelTests.ForceSparse, chunkRows);
            var dense = new float[23 * 48];
            chunked.ToDense(dense);
            Assert.Equal(layer.Weights, dense);
            Assert.Equal(Math.Min(chunkRows, 48), chunked.ChunkRows);
            Assert.Equal((48 + chunked.ChunkRows - 1) / chunked.ChunkRows, chunked.ChunkCount);
            Assert.Equal(whole.BlockWidth, chunked.BlockWidth);
            Assert.Equal(whole.BlockCount, chunked.BlockCount);
            Assert.Equal(whole.StoredValueCount, chunked.StoredValueCount);
        }
        // The dense path keeps one chunk whatever is asked.
        using var dense1 = PointwiseWeights.Create(new float[12], [], 3, 4, PointwiseKernelTests.ForceDense, chunkRows);
        Assert.Equal(1, dense1.ChunkCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => PointwiseWeights.Create(new float[12], [], 3, 4, 0f, chunkRows: 0));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(2)]
    [InlineData(1)]
    public void ChoosesTheBlockWidthOfTheZeroPattern(int blockWidth)
    {
        foreach (int outChannels in new[] { 32, 35, 37 })
        {
            var layer = PointwiseLayer.BlockStructured(new Random(blockWidth * 100 + outChannels), outChannels, 64, blockWidth, 0.75f);
            Assert.Equal(blockWidth, PointwiseWeights.ChooseBlockWidth(layer.Weights, outChannels, 64));
            using var weights = layer.Prepare(0.5f);
            Assert.True(weights.IsSparse);
            Assert.Equal(blockWidth, weights.BlockWidth);
            Assert.Equal(blockWidth, weights.ChannelGranularity);
            Assert.Equal(weights.NonZeroCount, weights.StoredValueCount);
            Assert.Equal($"SpMM block {blockWidth}", weights.KernelName);
        }
    }

    [Fact]
    public void NearlyFullBlocksAreTakenAndSparseOnesAreNot()
    {
        // Blocks of 4 sharing their rows, then one weight in 20 zeroed: 95% full, still block 4.
        var random = new Random(11);
        var layer = PointwiseLayer.BlockStructured(random, 16, 200, 4, 0.5f);
        int knocked = 0;
        for (int i = 0; i < layer.Weights.Length; i++)
            if (layer.Weights[i] != 0f && knocked++ % 20 == 0) layer.Weights[i] = 0f;
        Assert.Equal(4, PointwiseWeights.ChooseBlockWidth(layer.Weights, 16, 200));

        // Unstructured 90% sparsity: blocks of 2 or 4 would be mostly explicit zeros.
        var unstructured = PointwiseLayer.Random(random, 64, 200, 0.9f);
        Assert.Equal(1, PointwiseWeights.ChooseBlockWidth(unstructured.Weights, 64, 200));
    }

    [Fact]
    public void BlockLayoutCoversEveryChannelOnce()
    {
        foreach (int width in new[] { 4, 2, 1 })
            foreach (int outChannels in new[] { 1, 3, 5, 7, 9, 17 })
            {
                var layout = PointwiseWeights.BlockLayout(outChannels, width).ToArray();
                int next = 0;
                foreach (var (first, blockWidth) in layout)
                {
                    Assert.Equal(next, first);
                    Assert.True(blockWidth <= width);
                    if (first < outChannels / width * width) Assert.Equal(width, blockWidth);
                    next += blockWidth;
                }
                Assert.Equal(outChannels, next);
            }
    }

    [Theory]
    [InlineData(0.5f, 0.49f, true)]
    [InlineData(0.5f, 0.5f, true)]
    [InlineData(0.5f, 0.51f, false)]
    public void SparseThresholdDecidesThePath(float sparsity, float threshold, bool expectSparse)
    {
        var weights = new float[100];
        for (int i = 0; i < weights.Length; i++) weights[i] = i < sparsity * weights.Length ? 0f : 1f + i;
        using var prepared = PointwiseWeights.Create(weights, [], 10, 10, threshold);
        Assert.Equal(expectSparse, prepared.IsSparse);
        Assert.Equal(sparsity, prepared.Sparsity, 1e-6f);
    }

    [Fact]
    public void WrongSizesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => PointwiseWeights.Create(new float[11], [], 3, 4, 0.5f));
        Assert.Throws<ArgumentException>(() => PointwiseWeights.Create(new float[12], new float[2], 3, 4, 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => PointwiseWeights.Create([], [], 0, 4, 0.5f));
        using var weights = PointwiseWeights.Create(new float[12], [], 3, 4, 0.5f);
        Assert.Throws<ArgumentException>(() => weights.ToDense(new float[11]));
    }
}
