using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// With several threads an expansion -> depthwise -> projection run becomes <see cref="ChannelSplitBottleneckLayer"/> (one part
/// of the expanded channels per thread, partial sums of the projection) and <see cref="PartialSumLayer"/>: it must match the
/// scalar reference and one thread within rounding at every SIMD width, and give the same bits on every run.
/// </summary>
public sealed class ChannelSplitBottleneckTests
{
    public static TheoryData<int, int, int, int, int, float, bool, bool> Shapes() => new()
    {
        // height, width, stride, kernel, block width, projection sparsity, residual, projection writes the network output
        { 14, 14, 1, 3, 1, 0.8f, true, false },
        { 7, 7, 1, 3, 4, 0.8f, true, true },
        { 28, 28, 2, 3, 1, 0.9f, false, false },
        { 9, 13, 1, 5, 4, 0f, false, true },
        { 13, 11, 2, 5, 1, 0.5f, false, false },
        { 3, 1, 1, 3, 1, 1f, true, false },
        { 2, 3, 2, 3, 4, 0.99f, false, true },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SplitBottleneck_MatchesReference_AndOneThread_WithTheSameBitsEveryRun(int height, int width, int stride, int kernel, int blockWidth,
        float projectionSparsity, bool residual, bool projectionIsOutput)
    {
        var random = new Random(height * 131 + width * 17 + stride * 5 + kernel + blockWidth);
        const int channels = 19, expanded = 45;
        var twin = new TwinBuilder(channels, height, width);
        // A 1x1 in front puts the block's input in the arena (padded planes); the block's residual reads it too.
        TensorHandle input = twin.Pointwise(twin.Input, ScalarReference.Random(random, channels * channels), ScalarReference.Random(random, channels), channels, Activation.Relu);
        TensorHandle middle = twin.Pointwise(input, ScalarReference.BlockSparse(random, expanded, channels, blockWidth, 0.7f), ScalarReference.Random(random, expanded), expanded, Activation.Relu6);
        TensorHandle filtered = twin.Depthwise(middle, ScalarReference.Random(random, expanded * kernel * kernel), ScalarReference.Random(random, expanded), kernel, stride,
            Padding.Uniform(kernel / 2), Activation.Relu6);
        int outChannels = residual ? channels : 22;
        float[] projection = ScalarReference.BlockSparse(random, outChannels, expanded, 1, projectionSparsity);
        TensorHandle output = twin.Pointwise(filtered, projection, ScalarReference.Random(random, outChannels), outChannels,
            residual ? Activation.None : Activation.Relu6, residual ? input : null);
        if (!projectionIsOutput) output = twin.Pointwise(output, ScalarReference.Random(random, 5 * outChannels), [], 5, Activation.None);

        float[] image = ScalarReference.Random(random, twin.Input.Length);
        float[] expected = twin.Evaluate(image, output);
        string what = $"{height}x{width} s{stride} k{kernel} block {blockWidth} projection {projectionSparsity:P0}";
        foreach (SimdWidth simd in SimdSupport.Available)
        {
            float[] single = EngineAssert.Run(twin.Engine, output, image, new SparseNetworkOptions { Threads = 1, MaxSimdWidth = simd });
            EngineAssert.Close(expected, single, 1e-5, $"{what}, {simd}, 1 thread");
            foreach (int threads in new[] { 2, 3 })
            {
                SparseNetwork network = twin.Engine.Build(output, new SparseNetworkOptions { Threads = threads, MaxSimdWidth = simd });
                Assert.Single(network.PlannedLayers, layer => layer is ChannelSplitBottleneckLayer);
                Assert.Single(network.PlannedLayers, layer => layer is PartialSumLayer);
                float[] actual = EngineAssert.Run(network, image);
                EngineAssert.Close(expected, actual, 1e-5, $"{what}, {simd}, {threads} threads");
                EngineAssert.SameAsOneThread(network, image, single, actual, 1e-5, $"{what}, {simd}, {threads} threads");
            }
        }
    }

    [Fact]
    public void NotSplit_WithOneThread_SharedTensors_LargePlanes_OrTooFewChannelBlocks()
    {
        var random = new Random(11);
        static bool Splits(SparseNetworkBuilder builder, TensorHandle output, int threads = 2) =>
            builder.Build(output, new SparseNetworkOptions { Threads = threads }).PlannedLayers.Any(layer => layer is ChannelSplitBottleneckLayer);
        TensorHandle Block(SparseNetworkBuilder builder, int expanded, int blockWidth, bool shareExpanded = false, int outChannels = 8)
        {
            TensorHandle middle = builder.Pointwise(builder.Input, ScalarReference.BlockSparse(random, expanded, 8, blockWidth, 0.5f), [], expanded);
            TensorHandle filtered = builder.DepthwiseConv(middle, ScalarReference.Random(random, expanded * 9), [], 3, 3, padding: Padding.Uniform(1));
            if (shareExpanded) filtered = builder.Add(filtered, middle);
            return builder.Pointwise(filtered, ScalarReference.Random(random, outChannels * expanded), [], outChannels);
        }

        var plain = new SparseNetworkBuilder(8, 28, 28);
        TensorHandle y = Block(plain, 32, 1);
        Assert.True(Splits(plain, y));
        Assert.False(Splits(plain, y, threads: 1));
        Assert.DoesNotContain(plain.Build(y, new SparseNetworkOptions { Threads = 2, FuseLayers = false }).PlannedLayers, layer => layer is ChannelSplitBottleneckLayer);

        var large = new SparseNetworkBuilder(8, 29, 28);
        Assert.False(Splits(large, Block(large, 32, 1)));

        var shared = new SparseNetworkBuilder(8, 14, 14);
        Assert.False(Splits(shared, Block(shared, 32, 1, shareExpanded: true)));

        // Eight expanded channels in two blocks of four: one block per thread with two threads, too few for three.
        var narrow = new SparseNetworkBuilder(8, 14, 14);
        TensorHandle z = Block(narrow, 8, 4, outChannels: 4);
        Assert.True(Splits(narrow, z));
        Assert.False(Splits(narrow, z, threads: 3));

        // A projection that does not halve the channels (v1's 1x1 -> depthwise -> 1x1 runs).
        var wide = new SparseNetworkBuilder(8, 14, 14);
        Assert.False(Splits(wide, Block(wide, 32, 1, outChannels: 17)));
        Assert.True(Splits(wide, Block(wide, 32, 1, outChannels: 16)));
    }
}
