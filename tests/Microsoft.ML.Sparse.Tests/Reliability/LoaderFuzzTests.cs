using System.Globalization;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>
/// Seeded mutation fuzzing of <see cref="SparseModel.Load(ReadOnlyMemory{byte}, SparseModelOptions?, CancellationToken)"/>:
/// every mutant loads into a plan that scores, or throws a documented <see cref="OnnxModelException"/> naming the source,
/// within <see cref="LoaderFuzzer.CaseTimeout"/> and the allocation bound. SPARSE_FUZZ_CASES=N multiplies the case counts
/// for a manual long run (docs/reliability.md).
/// </summary>
public sealed class LoaderFuzzTests(ITestOutputHelper output)
{
    private const int GeneratedCasesPerModel = 800;
    private const int RealCasesPerModel = 60;

    private static int Scale =>
        int.TryParse(Environment.GetEnvironmentVariable("SPARSE_FUZZ_CASES"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int scale) && scale > 0 ? scale : 1;

    /// <summary>Small generated models covering every exporter shape the importer normalises.</summary>
    private static readonly (string Name, SyntheticMobileNetOptions Options)[] GeneratedModels =
    [
        ("v1", Tiny(SyntheticArchitecture.MobileNetV1, o => o.PointwiseSparsity = 0.8f)),
        ("v2 dynamic batch, reshape flatten", Tiny(SyntheticArchitecture.MobileNetV2, o => { o.DynamicBatch = true; o.Flatten = SyntheticFlatten.ShapeGather; })),
        ("v3 small, NHWC, 1x1 conv classifier", Tiny(SyntheticArchitecture.MobileNetV3Small, o => { o.NhwcInput = true; o.Classifier = SyntheticClassifier.Conv1x1; })),
        ("v1 opset 9, unfolded BN, identity weights", Tiny(SyntheticArchitecture.MobileNetV1, o => { o.Opset = 9; o.UnfoldedBatchNorm = true; o.WeightsThroughIdentity = true; })),
        ("EfficientNet-B0, sparse initializers", Tiny(SyntheticArchitecture.EfficientNetB0, o => { o.SparseInitializers = true; o.PointwiseSparsity = 0.7f; })),
        ("v3 large, MatMul classifier, opset 18", Tiny(SyntheticArchitecture.MobileNetV3Large, o => { o.Opset = 18; o.Classifier = SyntheticClassifier.MatMulAdd; })),
    ];

    private static readonly string[] RealModels =
        ["mobilenet_v1_0.75_192.onnx", "mobilenet_v2_1.0_224.onnx", "mobilenetv2-12.onnx", "mobilenet_v1_1.0_224.onnx"];

    private static SyntheticMobileNetOptions Tiny(SyntheticArchitecture architecture, Action<SyntheticMobileNetOptions> configure)
    {
        var options = new SyntheticMobileNetOptions { Architecture = architecture, WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, Seed = 11 };
        configure(options);
        return options;
    }

    [Fact]
    public void MutantsOfGeneratedModels_LoadAndScoreOrThrowDocumentedExceptions()
    {
        var fuzzer = new LoaderFuzzer();
        foreach (var (name, options) in GeneratedModels)
            fuzzer.Run(name, SyntheticMobileNet.Create(options), GeneratedCasesPerModel * Scale, firstSeed: 0);
        Check(fuzzer, "Generated models");
    }

    [Fact]
    public void MutantsOfRealModels_LoadAndScoreOrThrowDocumentedExceptions()
    {
        var fuzzer = new LoaderFuzzer();
        foreach (string file in RealModels)
        {
            byte[] original = File.ReadAllBytes(SharedData.Require("models/" + file));
            // Byte damage on a 10-17 MB file mostly hits weight bytes; structural mutants reach the importer's checks.
            fuzzer.Run(file + " (structural)", original, RealCasesPerModel * 2 / 3 * Scale, firstSeed: 0, structuralOnly: true);
            fuzzer.Run(file, original, RealCasesPerModel / 3 * Scale, firstSeed: 100_000);
        }
        Check(fuzzer, "Real models");
    }

    private void Check(LoaderFuzzer fuzzer, string title)
    {
        output.WriteLine(fuzzer.Report(title));
        Assert.Empty(fuzzer.Failures);
    }
}
