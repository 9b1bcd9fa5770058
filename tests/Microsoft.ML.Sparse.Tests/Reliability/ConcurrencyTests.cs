using Microsoft.ML.Data;
using Microsoft.ML.Sparse.Tests.MLNet;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>
/// Sustained concurrent scoring through one shared <see cref="SparseModel"/> (a workspace per thread) and one shared
/// <see cref="SparseMobileNetTransformer"/> (a PredictionEngine or cursor per thread) gives bitwise the single-thread
/// results: the model, network and transformer hold no mutable state shared between callers.
/// </summary>
public sealed class ConcurrencyTests(ITestOutputHelper output)
{
    private const int Callers = 8;
    private const int ImageCount = 16;

    private static readonly float[][] s_images = MLNetTestData.RandomImages(ImageCount, seed: 21);

    /// <summary>Runs <paramref name="work"/> on <see cref="Callers"/> threads released together; rethrows the first failure.</summary>
    private static void RunTogether(Action<int> work)
    {
        using var start = new Barrier(Callers);
        var failures = new Exception?[Callers];
        var threads = Enumerable.Range(0, Callers).Select(caller => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                work(caller);
            }
            catch (Exception e)
            {
                failures[caller] = e;
            }
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) Assert.True(thread.Join(Infrastructure.TestTimeouts.Scaled(TimeSpan.FromMinutes(2))), "a scoring thread did not finish in time");
        Assert.All(failures, failure => Assert.Null(failure));
    }

    [Theory]
    [InlineData(1, 400)]
    [InlineData(2, 300)]
    public void SharedSparseModel_WorkspacePerThread_MatchesSequentialRunsBitwise(int threadsPerInference, int inferencesPerCaller)
    {
        // The reference: the same options, loaded on its own and run by one caller.
        var options = new SparseModelOptions { Threads = threadsPerInference };
        var reference = MLNetTestData.ScoreDirectly(SparseModel.Load(MLNetTestData.TinyModel, options, TestContext.Current.CancellationToken), s_images);
        var shared = SparseModel.Load(MLNetTestData.TinyModel, options, TestContext.Current.CancellationToken);
        var mismatches = new int[Callers];
        RunTogether(caller =>
        {
            using var workspace = shared.CreateWorkspace();
            var scores = new float[shared.OutputLength];
            for (int i = 0; i < inferencesPerCaller; i++)
            {
                int image = (caller * 7 + i) % ImageCount;
                shared.Run(s_images[image], scores, workspace);
                if (!scores.AsSpan().SequenceEqual(reference[image])) mismatches[caller]++;
            }
        });
        output.WriteLine($"{Callers} callers x {inferencesPerCaller} inferences, {threadsPerInference} thread(s) each: {mismatches.Sum()} mismatches");
        Assert.All(mismatches, count => Assert.Equal(0, count));
    }

    [Fact]
    public void SharedTransformer_PredictionEnginePerThread_MatchesTheModelBitwise()
    {
        var mlContext = new MLContext(seed: 1);
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel })
            .Fit(MLNetTestData.LoadPixels(mlContext, []));
        var reference = MLNetTestData.ScoreDirectly(transformer.Model, s_images);
        var mismatches = new int[Callers];
        RunTogether(caller =>
        {
            // Engines over a shared transformer must not own it: by ML.NET's default, disposing an engine disposes its
            // transformer (and so the model every other engine scores with), as with OnnxTransformer.
            using var engine = mlContext.Model.CreatePredictionEngine<MLNetTestData.TinyInput, MLNetTestData.TinyOutput>(transformer,
                new PredictionEngineOptions { OwnsTransformer = false });
            var input = new MLNetTestData.TinyInput();
            for (int i = 0; i < 250; i++)
            {
                int image = (caller * 5 + i) % ImageCount;
                input.Pixels = s_images[image];
                if (!engine.Predict(input).Scores.AsSpan().SequenceEqual(reference[image])) mismatches[caller]++;
            }
        });
        Assert.All(mismatches, count => Assert.Equal(0, count));
    }

    [Fact]
    public void SharedTransformer_CursorPerThreadAndCursorSet_MatchTheModelBitwise()
    {
        var mlContext = new MLContext(seed: 1);
        var images = Enumerable.Range(0, 8).SelectMany(_ => s_images).ToArray();
        var data = MLNetTestData.LoadPixels(mlContext, images);
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel }).Fit(data);
        var scored = transformer.Transform(data);
        var reference = MLNetTestData.ScoreDirectly(transformer.Model, images);

        var perThread = new float[Callers][][];
        RunTogether(caller => perThread[caller] = MLNetTestData.ReadVectors(scored, "output"));
        Assert.All(perThread, rows => Assert.Equal(reference, rows));

        // A cursor set: ML.NET's parallel cursors, each scoring its share of the rows with its own workspace.
        var columns = new[] { scored.Schema["output"], scored.Schema["Id"] };
        var cursors = scored.GetRowCursorSet(columns, 4);
        output.WriteLine($"GetRowCursorSet(4) gave {cursors.Length} cursor(s)");
        var results = new (int Id, float[] Scores)[cursors.Length][];
        Parallel.For(0, cursors.Length, i =>
        {
            using var cursor = cursors[i];
            var getScores = cursor.GetGetter<VBuffer<float>>(scored.Schema["output"]);
            var getId = cursor.GetGetter<int>(scored.Schema["Id"]);
            var rows = new List<(int, float[])>();
            var buffer = default(VBuffer<float>);
            int id = 0;
            while (cursor.MoveNext())
            {
                getScores(ref buffer);
                getId(ref id);
                rows.Add((id, buffer.DenseValues().ToArray()));
            }
            results[i] = rows.ToArray();
        });
        var all = results.SelectMany(rows => rows).OrderBy(row => row.Id).ToArray();
        Assert.Equal(Enumerable.Range(0, images.Length), all.Select(row => row.Id));
        Assert.Equal(reference, all.Select(row => row.Scores));
    }
}
