using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>Whole synthetic MobileNets and v3 / EfficientNet blocks through the engine against the layer-by-layer scalar reference.</summary>
public sealed class SyntheticNetworkTests
{
    /// <summary>Relative error allowed over a whole network (against the double-precision reference): the kernels' bound holds end to end.</summary>
    private const double NetworkTolerance = 1e-5;

    [Theory]
    [InlineData("V1", 0.9f)]
    [InlineData("V1", 0f)]
    [InlineData("V2", 0.9f)]
    [InlineData("V2", 0.5f)]
    public void MobileNet_Reduced_MatchesReference_AtEveryWidth(string model, float sparsity)
    {
        var (twin, logits, output) = model == "V1"
            ? SyntheticMobileNets.MobileNetV1(64, 0.5f, sparsity, seed: 1)
            : SyntheticMobileNets.MobileNetV2(64, 0.5f, sparsity, seed: 3);
        var random = new Random(2);
        float[] input = ScalarReference.Random(random, twin.Input.Length);
        EngineAssert.MatchesReference(twin, logits, random, $"{model} 0.5 64 logits", NetworkTolerance, input: input);
        EngineAssert.MatchesReference(twin, output, random, $"{model} 0.5 64 softmax", NetworkTolerance, input: input);
    }

    [Fact]
    public void MobileNetV1_FullSize224_MatchesReference()
    {
        var (twin, logits, _) = SyntheticMobileNets.MobileNetV1(224, 1f, 0.9f, seed: 5);
        EngineAssert.MatchesReference(twin, logits, new Random(6), "v1 1.0 224", NetworkTolerance, widths: [SimdSupport.Widest]);
    }

    [Fact]
    public void MobileNetV2_FullSize224_MatchesReference()
    {
        var (twin, logits, _) = SyntheticMobileNets.MobileNetV2(224, 1f, 0.9f, seed: 7);
        EngineAssert.MatchesReference(twin, logits, new Random(8), "v2 1.0 224", NetworkTolerance, widths: [SimdSupport.Widest]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void MobileNetV3Blocks_MatchReference(int stride)
    {
        var random = new Random(9 + stride);
        var twin = new TwinBuilder(24, 29, 27);
        TensorHandle x = SyntheticMobileNets.MobileNetV3Block(twin, random, twin.Input, 72, 1, 0.8f);
        x = SyntheticMobileNets.MobileNetV3Block(twin, random, x, 96, stride, 0.8f);
        EngineAssert.MatchesReference(twin, x, random, $"v3 blocks, second stride {stride}", NetworkTolerance);
    }

    [Fact]
    public void EfficientNetBlocks_MatchReference()
    {
        var random = new Random(12);
        var twin = new TwinBuilder(16, 21, 19);
        TensorHandle x = SyntheticMobileNets.EfficientNetBlock(twin, random, twin.Input, 6, 0.7f);
        x = SyntheticMobileNets.EfficientNetBlock(twin, random, x, 4, 0.9f);
        EngineAssert.MatchesReference(twin, x, random, "EfficientNet blocks", NetworkTolerance);
    }
}
