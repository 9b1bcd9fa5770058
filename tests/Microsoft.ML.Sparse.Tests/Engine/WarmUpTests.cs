using Microsoft.ML.Sparse.Kernels;
using Microsoft.ML.Sparse.Tests.MLNet;

namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// The warm-up at load (<see cref="SparseModelOptions.WarmUp"/>) compiles the plan's kernels before the first prediction:
/// it must change no score (bit for bit, against a model loaded without it, at every SIMD width and thread count) and
/// leave the first real inference allocating nothing.
/// </summary>
public sealed class WarmUpTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public static TheoryData<SyntheticArchitecture, int, SimdWidth> Cases()
    {
        var data = new TheoryData<SyntheticArchitecture, int, SimdWidth>();
        foreach (var architecture in new[] { SyntheticArchitecture.MobileNetV1, SyntheticArchitecture.MobileNetV2, SyntheticArchitecture.MobileNetV3Small })
            foreach (int threads in new[] { 1, 2 })
                foreach (SimdWidth width in SimdSupport.Available)
                    data.Add(architecture, threads, width);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void WarmUp_ChangesNoScore(SyntheticArchitecture architecture, int threads, SimdWidth width)
    {
        byte[] onnx = SyntheticMobileNet.Create(new SyntheticMobileNetOptions
        {
            Architecture = architecture, WidthMultiplier = 0.5f, Resolution = 64, Classes = 37, PointwiseSparsity = 0.8f, Seed = 11,
        });
        var cold = SparseModel.Load(onnx, new SparseModelOptions { Threads = threads, MaxSimdWidth = width, WarmUp = false }, Cancel);
        var warm = SparseModel.Load(onnx, new SparseModelOptions { Threads = threads, MaxSimdWidth = width, WarmUp = true }, Cancel);
        AssertSameScores(cold, warm, images: 3);
    }

    [Fact]
    public void WarmUp_ChangesNoScoreOfARealModel()
    {
        string path = SharedData.Require("models/mobilenet_v2_1.0_224.onnx");
        var cold = SparseModel.Load(path, new SparseModelOptions { Threads = 1, WarmUp = false }, Cancel);
        var warm = SparseModel.Load(path, new SparseModelOptions { Threads = 1 }, Cancel);
        AssertSameScores(cold, warm, images: 2);
    }

    /// <summary>
    /// The first inference after a warmed-up load (in the workspace the warm-up ran in, with one thread, or a new one) allocates
    /// nothing on the managed heap; nor do the ones after it.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void FirstInferenceAfterWarmUp_AllocatesNothing(int threads)
    {
        byte[] onnx = SyntheticMobileNet.Create(new SyntheticMobileNetOptions
        {
            Architecture = SyntheticArchitecture.MobileNetV2, WidthMultiplier = 0.5f, Resolution = 64, Classes = 21, PointwiseSparsity = 0.9f, Seed = 3,
        });
        var model = SparseModel.Load(onnx, new SparseModelOptions { Threads = threads }, Cancel);
        float[] image = MLNetTestData.RandomImages(1, seed: 8, length: model.InputLength)[0];
        var scores = new float[model.OutputLength];
        foreach (SparseWorkspace workspace in new[] { model.CreateWorkspace(), model.CreateWorkspace() })
        {
            using (workspace)
            {
                // Per inference, so a failure says which one allocated (once, in full-suite runs under load, 4,088 bytes
                // over the five; never alone).
                var allocated = new long[5];
                for (int i = 0; i < allocated.Length; i++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    model.Run(image, scores, workspace);
                    allocated[i] = GC.GetAllocatedBytesForCurrentThread() - before;
                }
                Assert.True(allocated.All(bytes => bytes == 0), $"bytes allocated by inferences 1-5: {string.Join(", ", allocated)}");
            }
        }
    }

    /// <summary>With one thread the warm-up's workspace goes to the first caller only; every caller gets its own.</summary>
    [Fact]
    public void WarmUpWorkspace_GoesToOneCallerOnly()
    {
        var model = SparseModel.Load(MLNetTestData.TinyModel, new SparseModelOptions { Threads = 1 }, Cancel);
        var workspaces = new SparseWorkspace[8];
        Parallel.For(0, workspaces.Length, i => workspaces[i] = model.CreateWorkspace());
        Assert.Equal(workspaces.Length, workspaces.Distinct().Count());
        float[] image = MLNetTestData.RandomImages(1, seed: 2, length: model.InputLength)[0];
        var first = new float[model.OutputLength];
        model.Run(image, first, workspaces[0]);
        foreach (SparseWorkspace workspace in workspaces)
        {
            var scores = new float[model.OutputLength];
            model.Run(image, scores, workspace);
            Assert.Equal(Bits(first), Bits(scores));
            workspace.Dispose();
        }
    }

    /// <summary>Each model's first inference (the warm one's runs compiled code, the cold one's is what compiles it) and later ones agree bit for bit.</summary>
    private static void AssertSameScores(SparseModel cold, SparseModel warm, int images)
    {
        using var coldWorkspace = cold.CreateWorkspace();
        using var warmWorkspace = warm.CreateWorkspace();
        var coldScores = new float[cold.OutputLength];
        var warmScores = new float[warm.OutputLength];
        foreach (float[] image in MLNetTestData.RandomImages(images, seed: 17, length: cold.InputLength))
        {
            cold.Run(image, coldScores, coldWorkspace);
            warm.Run(image, warmScores, warmWorkspace);
            Assert.All(coldScores, value => Assert.True(float.IsFinite(value)));
            Assert.Equal(Bits(coldScores), Bits(warmScores));
        }
    }

    private static int[] Bits(float[] values) => Array.ConvertAll(values, BitConverter.SingleToInt32Bits);
}
