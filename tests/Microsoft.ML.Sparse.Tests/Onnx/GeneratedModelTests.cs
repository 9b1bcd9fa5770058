namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>Every generated MobileNet variant loads in ONNX Runtime and scores to finite, non-degenerate outputs.</summary>
public class GeneratedModelTests
{
    public static TheoryData<string> Variants => new(GeneratedVariants.Names);

    [Theory]
    [MemberData(nameof(Variants))]
    public void VariantLoadsAndScoresInOnnxRuntime(string variant)
    {
        var options = GeneratedVariants.Get(variant);
        byte[] model = SyntheticMobileNet.Create(options);
        int batch = GeneratedVariants.BatchOf(options);
        float[] input = GeneratedVariants.RandomImages(options, batch, seed: 11);

        float[] output = GeneratedVariants.ScoreWithOnnxRuntime(model, input, GeneratedVariants.InputShape(options, batch));

        Assert.Equal(batch * options.Classes, output.Length);
        Assert.All(output, value => Assert.True(float.IsFinite(value), $"non-finite output {value}"));
        for (int image = 0; image < batch; image++)
        {
            var scores = output.AsSpan(image * options.Classes, options.Classes);
            if (options.Softmax)
            {
                float sum = 0f;
                foreach (float p in scores) sum += p;
                Assert.InRange(sum, 0.999f, 1.001f);
            }
            // Activations neither vanished nor exploded: the logits (or probabilities) still separate the classes.
            float spread = scores.ToArray().Max() - scores.ToArray().Min();
            Assert.InRange(spread, options.Softmax ? 1e-5f : 1e-2f, options.Softmax ? 1f : 1e4f);
        }
    }

    [Fact]
    public void SameSeedGivesSameBytesAndOtherSeedDiffers()
    {
        var options = GeneratedVariants.Get("v1_w025_r64");
        byte[] first = SyntheticMobileNet.Create(options);
        Assert.Equal(first, SyntheticMobileNet.Create(options));
        options.Seed++;
        Assert.NotEqual(first, SyntheticMobileNet.Create(options));
    }

    [Fact]
    public void PointwiseSparsityZeroesThatFractionOfEach1x1Weight()
    {
        var options = new SyntheticMobileNetOptions { WidthMultiplier = 0.25f, Resolution = 64, PointwiseSparsity = 0.7f };
        var model = Microsoft.ML.Sparse.Onnx.Schema.ModelProto.Parser.ParseFrom(SyntheticMobileNet.Create(options));
        int pointwise = 0;
        foreach (var tensor in model.Graph.Initializer.Where(t => t.Dims.Count == 4 && t.Dims[2] == 1 && t.Dims[3] == 1))
        {
            float[] values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray();
            double zeros = values.Count(v => v == 0f);
            Assert.InRange(zeros / values.Length, 0.7 - 0.5 / values.Length, 0.7 + 0.5 / values.Length);
            pointwise++;
        }
        Assert.Equal(13, pointwise);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(22)]
    public void UnsupportedOpsetIsRejectedWithTheSupportedRange(int opset)
    {
        var error = Assert.Throws<ArgumentException>(() => SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Opset = opset }));
        Assert.Contains("7 to 21", error.Message);
    }
}

/// <summary>The named generated-model variants shared by the generator, pruner and parity tests (small, so CI stays quick).</summary>
internal static class GeneratedVariants
{
    private static readonly Dictionary<string, Func<SyntheticMobileNetOptions>> All = new()
    {
        ["v1_w025_r64"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV1, WidthMultiplier = 0.25f, Resolution = 64 },
        ["v2_w035_r64"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV2, WidthMultiplier = 0.35f, Resolution = 64, Classifier = SyntheticClassifier.MatMulAdd },
        ["v3small_r64_opset14_hardswish"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV3Small, WidthMultiplier = 0.5f, Resolution = 64, Opset = 14 },
        ["v3large_w05_r64_opset13"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV3Large, WidthMultiplier = 0.5f, Resolution = 64 },
        ["efficientnet_b0_w025_r64"] = () => new() { Architecture = SyntheticArchitecture.EfficientNetB0, WidthMultiplier = 0.25f, Resolution = 64 },
        ["v1_bn_unfolded"] = () => new() { WidthMultiplier = 0.25f, Resolution = 64, UnfoldedBatchNorm = true },
        ["v2_bn_unfolded_opset17"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV2, WidthMultiplier = 0.35f, Resolution = 64, UnfoldedBatchNorm = true, Opset = 17 },
        ["v2_nhwc_transpose"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV2, WidthMultiplier = 0.35f, Resolution = 64, NhwcInput = true },
        ["v1_sparse_initializer_80"] = () => new() { WidthMultiplier = 0.25f, Resolution = 64, SparseInitializers = true, PointwiseSparsity = 0.8f },
        ["v1_opset7_clip_attributes"] = () => new() { WidthMultiplier = 0.25f, Resolution = 64, Opset = 7, Flatten = SyntheticFlatten.ShapeGather },
        ["v2_batch_n3_shape_gather"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV2, WidthMultiplier = 0.35f, Resolution = 64, DynamicBatch = true, Flatten = SyntheticFlatten.ShapeGather, Classifier = SyntheticClassifier.MatMulAdd, Softmax = false },
        ["v1_conv_classifier_reshape"] = () => new() { WidthMultiplier = 0.25f, Resolution = 64, Classifier = SyntheticClassifier.Conv1x1, Flatten = SyntheticFlatten.ReshapeConstant, Classes = 1001 },
        ["v3small_conv_head_identity_weights"] = () => new() { Architecture = SyntheticArchitecture.MobileNetV3Small, WidthMultiplier = 0.5f, Resolution = 64, Classifier = SyntheticClassifier.Conv1x1, WeightsThroughIdentity = true, Softmax = false },
        ["v1_w100_r96_logits"] = () => new() { Resolution = 96, Softmax = false },
    };

    public static IEnumerable<string> Names => All.Keys;

    public static SyntheticMobileNetOptions Get(string name) => All[name]();

    /// <summary>Dynamic-batch variants run three images at once, the others one.</summary>
    public static int BatchOf(SyntheticMobileNetOptions options) => options.DynamicBatch ? 3 : 1;

    public static int[] InputShape(SyntheticMobileNetOptions options, int batch) => options.NhwcInput
        ? [batch, options.Resolution, options.Resolution, 3]
        : [batch, 3, options.Resolution, options.Resolution];

    /// <summary>Scores <paramref name="model"/> with ONNX Runtime, the reference implementation.</summary>
    public static float[] ScoreWithOnnxRuntime(byte[] model, float[] input, int[] dims)
    {
        using var reference = new OnnxRuntimeReference(model);
        return reference.Run(input, dims);
    }

    /// <summary>Uniform [-1, 1) pixels, the range of MobileNet's x/127.5-1 preprocessing.</summary>
    public static float[] RandomImages(SyntheticMobileNetOptions options, int batch, int seed)
    {
        var random = new Random(seed);
        var values = new float[batch * 3 * options.Resolution * options.Resolution];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }
}
