namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// Squeeze-and-excitation's per-channel scale folded into the 1x1 layer that reads it (<see cref="SqueezeExcitationFolding"/>):
/// the plan scales the consumer's weights instead of the tensor, and scores like the scalar reference at every width and
/// thread count, sparse (block widths 1 and 4) and dense, with and without a residual; where the scaled tensor has another
/// reader, or is the network's output, or the weights outnumber the tensor, the tensor pass stays.
/// </summary>
public sealed class SqueezeExcitationFoldingTests
{
    [Theory]
    [InlineData(0.9f, 1, true)]
    [InlineData(0.75f, 4, false)]
    [InlineData(0f, 1, true)]
    public void FoldedScale_MatchesReference_AndReplacesTheTensorPass(float sparsity, int blockWidth, bool residual)
    {
        var random = new Random(31 + blockWidth);
        var twin = new TwinBuilder(24, 17, 23);
        TensorHandle h = twin.Pointwise(twin.Input, ScalarReference.BlockSparse(random, 40, 24, blockWidth, sparsity), ScalarReference.Random(random, 40), 40, Activation.Swish);
        TensorHandle excited = twin.Multiply(h, Gate(twin, random, h));
        TensorHandle y = twin.Pointwise(excited, ScalarReference.BlockSparse(random, 24, 40, blockWidth, sparsity), ScalarReference.Random(random, 24), 24,
            Activation.None, residual ? twin.Input : null);

        foreach (int threads in EngineAssert.ThreadCounts)
        {
            var plan = twin.Engine.Build(y, new SparseNetworkOptions { Threads = threads }).PlannedLayers;
            Assert.Contains(plan, layer => layer is ScaleWeightsLayer);
            Assert.DoesNotContain(plan, layer => layer is ScaleChannelsLayer);
        }
        EngineAssert.MatchesReference(twin, y, random, $"SE folded at {sparsity:P0}, block {blockWidth}, residual {residual}", 1e-5);
    }

    [Fact]
    public void ScaledTensorWithAnotherReaderOrAsOutput_KeepsTheTensorPass()
    {
        var random = new Random(8);
        var twin = new TwinBuilder(16, 9, 11);
        TensorHandle h = twin.Pointwise(twin.Input, ScalarReference.Random(random, 16 * 16), [], 16, Activation.Relu);
        TensorHandle excited = twin.Multiply(h, Gate(twin, random, h));
        TensorHandle y = twin.Pointwise(excited, ScalarReference.Random(random, 16 * 16), [], 16, Activation.None, residual: excited);

        Assert.Contains(twin.Engine.Build(y).PlannedLayers, layer => layer is ScaleChannelsLayer);
        Assert.Contains(twin.Engine.Build(excited).PlannedLayers, layer => layer is ScaleChannelsLayer);
        EngineAssert.MatchesReference(twin, y, random, "SE read twice", 1e-5);
    }

    /// <summary>On a small plane the consumer's weights outnumber the tensor's elements (x the cost ratio): the tensor pass is cheaper and stays.</summary>
    [Fact]
    public void SmallPlaneWithManyWeights_KeepsTheTensorPass()
    {
        var random = new Random(3);
        var twin = new TwinBuilder(64, 3, 3);
        TensorHandle excited = twin.Multiply(twin.Input, Gate(twin, random, twin.Input));
        TensorHandle y = twin.Pointwise(excited, ScalarReference.Random(random, 64 * 64), [], 64, Activation.None);
        Assert.True(64 * 64 * SqueezeExcitationFolding.CostPerWeight > excited.Length);
        Assert.Contains(twin.Engine.Build(y).PlannedLayers, layer => layer is ScaleChannelsLayer);
        EngineAssert.MatchesReference(twin, y, random, "SE on a small plane", 1e-5);
    }

    /// <summary>Global pooling, a ReLU FC and a Sigmoid FC: the per-channel gate of <paramref name="x"/>.</summary>
    private static TensorHandle Gate(TwinBuilder twin, Random random, TensorHandle x)
    {
        TensorHandle s = twin.GlobalAveragePool(x);
        s = twin.Pointwise(s, ScalarReference.Random(random, 8 * x.Channels), ScalarReference.Random(random, 8), 8, Activation.Relu);
        return twin.Pointwise(s, ScalarReference.Random(random, x.Channels * 8), ScalarReference.Random(random, x.Channels), x.Channels, Activation.Sigmoid);
    }
}
