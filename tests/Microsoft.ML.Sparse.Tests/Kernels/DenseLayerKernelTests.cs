using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>GEMV, pooling, elementwise, activation and softmax layers (through one-layer networks) against the scalar reference.</summary>
public sealed class DenseLayerKernelTests
{
    public static TheoryData<ActivationKind> ActivationKinds => new(Enum.GetValues<ActivationKind>());

    private static Activation Sample(ActivationKind kind) => kind switch
    {
        ActivationKind.Clip => Activation.Relu6,
        ActivationKind.HardSigmoid => Activation.HardSigmoid(),
        _ => new Activation(kind),
    };

    /// <summary>Output counts around every vector width and the 4-vector block; inputs from 1 to a flattened [C,H,W].</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 1, 1)]
    [InlineData(16, 1, 1)]
    [InlineData(5, 3, 2)]
    [InlineData(40, 1, 1)]
    public void FullyConnected_MatchesReference(int channels, int height, int width)
    {
        var random = new Random(channels * 7 + height);
        foreach (int outputs in new[] { 1, 3, 4, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100 })
        {
            var twin = new TwinBuilder(channels, height, width);
            TensorHandle y = twin.FullyConnected(twin.Input, ScalarReference.Random(random, outputs * channels * height * width), ScalarReference.Random(random, outputs), outputs, Activation.Relu);
            EngineAssert.MatchesReference(twin, y, random, $"FC {channels}x{height}x{width} -> {outputs}");
        }
    }

    /// <summary>A 1x1 convolution on a single pixel runs the GEMV, with bias, residual and activation.</summary>
    [Theory]
    [InlineData(8, 17)]
    [InlineData(72, 24)]
    [InlineData(33, 130)]
    public void PointwiseOnOnePixel_WithResidual_MatchesReference(int inChannels, int outChannels)
    {
        var random = new Random(inChannels + outChannels);
        var twin = new TwinBuilder(inChannels, 1, 1);
        TensorHandle residual = twin.Activate(twin.Input, Activation.None);
        TensorHandle skip = twin.Pointwise(residual, ScalarReference.Random(random, outChannels * inChannels), ScalarReference.Random(random, outChannels), outChannels, Activation.None);
        TensorHandle y = twin.Pointwise(residual, ScalarReference.Random(random, outChannels * inChannels), [], outChannels, Activation.HardSwish, skip);
        EngineAssert.MatchesReference(twin, y, random, $"1x1 on one pixel {inChannels}->{outChannels}");
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 1, 17)]
    [InlineData(5, 7, 7)]
    [InlineData(17, 14, 14)]
    [InlineData(2, 9, 9)]
    [InlineData(3, 11, 13)]
    [InlineData(2, 56, 56)]
    public void GlobalAveragePool_MatchesReference(int channels, int height, int width)
    {
        var random = new Random(channels * height);
        var twin = new TwinBuilder(channels, height, width);
        EngineAssert.MatchesReference(twin, twin.GlobalAveragePool(twin.Input), random, $"GAP {channels}x{height}x{width}");
    }

    [Theory]
    [MemberData(nameof(ActivationKinds))]
    public void AddAndActivate_MatchReference(ActivationKind kind)
    {
        var random = new Random((int)kind);
        foreach ((int c, int h, int w) in new[] { (1, 1, 1), (2, 3, 5), (3, 7, 11), (4, 13, 9) })
        {
            var twin = new TwinBuilder(c, h, w);
            TensorHandle scaled = twin.Activate(twin.Input, Sample(kind));
            TensorHandle y = twin.Add(scaled, twin.Input, Sample(kind));
            // Inputs in [-8, 8) reach every piece of the piecewise activations.
            EngineAssert.MatchesReference(twin, y, random, $"{kind} {c}x{h}x{w}", input: ScalarReference.Random(random, twin.Input.Length, 8f));
        }
    }

    [Fact]
    public void Multiply_PerChannelAndSameShape_MatchReference()
    {
        var random = new Random(5);
        foreach ((int c, int h, int w) in new[] { (1, 1, 1), (3, 2, 9), (5, 7, 7), (6, 5, 13) })
        {
            var twin = new TwinBuilder(c, h, w);
            TensorHandle scale = twin.GlobalAveragePool(twin.Input);
            TensorHandle excited = twin.Multiply(twin.Input, scale);
            TensorHandle y = twin.Multiply(excited, twin.Input);
            EngineAssert.MatchesReference(twin, y, random, $"multiply {c}x{h}x{w}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(17)]
    [InlineData(1000)]
    public void Softmax_MatchesReference_AndIsStableForLargeScores(int classes)
    {
        var random = new Random(classes);
        var twin = new TwinBuilder(classes, 1, 1);
        TensorHandle y = twin.Softmax(twin.Input);
        EngineAssert.MatchesReference(twin, y, random, $"softmax {classes}");
        // Scores near 1000 overflow exp() unless the maximum is subtracted first.
        float[] large = ScalarReference.Random(random, classes, 5f).Select(v => v + 1000f).ToArray();
        EngineAssert.MatchesReference(twin, y, random, $"softmax {classes} around 1000", input: large);
    }
}
