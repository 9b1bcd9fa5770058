namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// Every generated MobileNet variant, dense and pruned to 90%, scored by <see cref="SparseModel"/> and by ONNX Runtime:
/// max|ours - ORT| / max|ORT| within 1e-4 and the same top-5 classes for every image.
/// </summary>
public class GeneratedModelParityTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string, float, int> Cases()
    {
        var cases = new TheoryData<string, float, int>();
        foreach (string variant in GeneratedVariants.Names)
        {
            cases.Add(variant, 0f, 1);
            cases.Add(variant, 0.9f, 1);
        }
        // Block-pruned weights, for the engine's block kernels.
        cases.Add("v1_w025_r64", 0.9f, 4);
        cases.Add("v2_w035_r64", 0.9f, 2);
        cases.Add("efficientnet_b0_w025_r64", 0.9f, 4);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SparseModelMatchesOnnxRuntime(string variant, float sparsity, int block)
    {
        var options = GeneratedVariants.Get(variant);
        byte[] model = SyntheticMobileNet.Create(options);
        if (sparsity > 0)
            OnnxPruner.Prune(model, out model, new PruningOptions { TargetSparsity = sparsity, BlockSize = block }, TestContext.Current.CancellationToken);
        int batch = GeneratedVariants.BatchOf(options);
        float[] input = GeneratedVariants.RandomImages(options, batch, seed: 21);
        float[] expected = GeneratedVariants.ScoreWithOnnxRuntime(model, input, GeneratedVariants.InputShape(options, batch));

        var sparse = SparseModel.Load(model, new SparseModelOptions { Threads = 2 }, TestContext.Current.CancellationToken);
        Assert.Equal(options.Classes, sparse.OutputLength);
        Assert.Equal(3 * options.Resolution * options.Resolution, sparse.InputLength);
        var actual = new float[batch * sparse.OutputLength];
        sparse.Run(input, actual, sparse.CreateWorkspace());

        double largest = expected.Max(Math.Abs);
        double error = expected.Zip(actual).Max(pair => Math.Abs(pair.First - pair.Second));
        Assert.True(error <= Tolerance * largest, $"max |ours - ORT| = {error:G3}, {error / largest:G3} of max |ORT| {largest:G3}");
        for (int image = 0; image < batch; image++)
        {
            Assert.Equal(TopFive(expected, image, options.Classes), TopFive(actual, image, options.Classes));
        }
    }

    private static int[] TopFive(float[] scores, int image, int classes) =>
        Enumerable.Range(0, classes).OrderByDescending(c => scores[image * classes + c]).Take(5).ToArray();
}
