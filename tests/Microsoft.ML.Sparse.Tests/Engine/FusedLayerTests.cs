namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// A large 1x1 output feeding a depthwise layer runs fused band by band (<see cref="FusedPointwiseDepthwiseLayer"/>): it
/// must give the bits of the two layers run apart, with any thread count, for every stride, padding and band boundary.
/// </summary>
public sealed class FusedLayerTests
{
    public static TheoryData<int, int, int, int, int> Shapes() => new()
    {
        // channels, height, width, stride, kernel: each 1x1 output above the fusion threshold (2 MiB).
        { 64, 97, 89, 2, 3 },
        { 64, 97, 89, 1, 3 },
        { 48, 120, 96, 2, 5 },
        { 40, 131, 101, 1, 5 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FusedEqualsUnfusedBitwise_ForEveryPaddingAndThreadCount(int channels, int height, int width, int stride, int kernel)
    {
        var random = new Random(channels + height + stride * 7 + kernel);
        foreach (var pad in new[] { Padding.Uniform(kernel / 2), new Padding(0, 1, kernel - 1, 0), new Padding(kernel - 1, 0, 0, kernel / 2) })
        {
            var builder = new SparseNetworkBuilder(7, height, width);
            float[] expand = ScalarReference.Random(random, channels * 7), depthwise = ScalarReference.Random(random, channels * kernel * kernel);
            for (int i = 0; i < expand.Length; i++)
                if (random.NextSingle() < 0.7f) expand[i] = 0f;
            TensorHandle middle = builder.Pointwise(builder.Input, expand, ScalarReference.Random(random, channels), channels, Activation.Relu6);
            TensorHandle output = builder.DepthwiseConv(middle, depthwise, ScalarReference.Random(random, channels), kernel, kernel, stride, stride, pad, Activation.HardSwish);
            float[] input = ScalarReference.Random(random, builder.Input.Length);

            SparseNetwork unfused = builder.Build(output, new SparseNetworkOptions { Threads = 1, FuseLayers = false });
            Assert.DoesNotContain(unfused.PlannedLayers, layer => layer is FusedPointwiseDepthwiseLayer);
            float[] expected = EngineAssert.Run(unfused, input);
            foreach (int threads in new[] { 1, 2, 3 })
            {
                SparseNetwork fused = builder.Build(output, new SparseNetworkOptions { Threads = threads });
                Assert.IsType<FusedPointwiseDepthwiseLayer>(Assert.Single(fused.PlannedLayers));
                float[] actual = EngineAssert.Run(fused, input);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{channels}x{height}x{width} s{stride} k{kernel} {pad}, {threads} thread(s): fused differs from unfused.");
            }
        }
    }

    /// <summary>
    /// On small planes with several threads the pair runs channel range by channel range (<see cref="PairedPointwiseDepthwiseLayer"/>):
    /// bitwise the unfused result, with block widths 1 and 4 (channel ranges at block boundaries), dense and padded planes,
    /// 3x3 and 5x5 depthwise layers at strides 1 and 2.
    /// </summary>
    [Theory]
    [InlineData(14, 14, 1, 3, 1)]
    [InlineData(7, 7, 4, 3, 1)]
    [InlineData(9, 13, 1, 3, 1)]
    [InlineData(16, 16, 4, 3, 1)]
    [InlineData(14, 14, 1, 5, 1)]
    [InlineData(7, 7, 4, 5, 1)]
    [InlineData(11, 9, 1, 5, 1)]
    [InlineData(14, 14, 4, 5, 2)]
    [InlineData(15, 13, 1, 5, 2)]
    [InlineData(14, 14, 1, 3, 2)]
    public void PairedEqualsUnfusedBitwise_OnSmallPlanes(int height, int width, int blockWidth, int kernel, int stride)
    {
        var random = new Random(height * 31 + width + blockWidth + kernel * 7 + stride);
        var builder = new SparseNetworkBuilder(24, height, width);
        // A 1x1 in front puts the pair's input in the arena (padded planes); the pair's own output is the network's.
        TensorHandle first = builder.Pointwise(builder.Input, ScalarReference.Random(random, 24 * 24), [], 24, Activation.Relu);
        float[] expand = ScalarReference.BlockSparse(random, 37, 24, blockWidth, 0.75f);
        TensorHandle middle = builder.Pointwise(first, expand, ScalarReference.Random(random, 37), 37, Activation.Relu6);
        TensorHandle output = builder.DepthwiseConv(middle, ScalarReference.Random(random, 37 * kernel * kernel), ScalarReference.Random(random, 37), kernel, kernel,
            stride, stride, Padding.Uniform(kernel / 2), stride == 1 ? Activation.Relu6 : Activation.Swish);
        float[] input = ScalarReference.Random(random, builder.Input.Length);

        SparseNetwork single = builder.Build(output, new SparseNetworkOptions { Threads = 1 });
        Assert.DoesNotContain(single.PlannedLayers, layer => layer is PairedPointwiseDepthwiseLayer);
        float[] expected = EngineAssert.Run(single, input);
        foreach (int threads in new[] { 2, 3, 4 })
        {
            SparseNetwork paired = builder.Build(output, new SparseNetworkOptions { Threads = threads });
            Assert.Contains(paired.PlannedLayers, layer => layer is PairedPointwiseDepthwiseLayer);
            Assert.True(expected.AsSpan().SequenceEqual(EngineAssert.Run(paired, input)), $"{height}x{width} k{kernel} s{stride}, block {blockWidth}, {threads} threads: paired differs.");
        }
    }

    [Fact]
    public void SmallOrSharedOrResidualOutputsAreNotFused()
    {
        var random = new Random(5);
        // Below the threshold: 16 x 56 x 56 floats.
        var small = new SparseNetworkBuilder(8, 56, 56);
        TensorHandle y = small.DepthwiseConv(small.Pointwise(small.Input, ScalarReference.Random(random, 16 * 8), [], 16), ScalarReference.Random(random, 16 * 9), [], 3, 3);
        Assert.DoesNotContain(small.Build(y).PlannedLayers, layer => layer is FusedPointwiseDepthwiseLayer);

        // Large, but also read by an Add: the 1x1 output must stay a real tensor.
        var shared = new SparseNetworkBuilder(8, 112, 112);
        TensorHandle expanded = shared.Pointwise(shared.Input, ScalarReference.Random(random, 64 * 8), [], 64);
        TensorHandle filtered = shared.DepthwiseConv(expanded, ScalarReference.Random(random, 64 * 9), [], 3, 3, padding: Padding.Uniform(1));
        TensorHandle sum = shared.Add(filtered, expanded);
        Assert.DoesNotContain(shared.Build(sum).PlannedLayers, layer => layer is FusedPointwiseDepthwiseLayer);

        // Large, but with a residual: not fused.
        var residual = new SparseNetworkBuilder(64, 112, 112);
        TensorHandle withResidual = residual.Pointwise(residual.Input, ScalarReference.Random(random, 64 * 64), [], 64, residual: residual.Input);
        TensorHandle after = residual.DepthwiseConv(withResidual, ScalarReference.Random(random, 64 * 9), [], 3, 3);
        Assert.DoesNotContain(residual.Build(after).PlannedLayers, layer => layer is FusedPointwiseDepthwiseLayer);
    }
}
