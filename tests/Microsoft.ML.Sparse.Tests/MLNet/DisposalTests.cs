using Microsoft.ML.Data;
using static Microsoft.ML.Sparse.Tests.MLNet.MLNetTestData;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>
/// IDisposable on <see cref="SparseModel"/> and <see cref="SparseMobileNetTransformer"/>: disposing frees the native
/// weights at once, later use throws <see cref="ObjectDisposedException"/> (also through workspaces, cursors and
/// prediction engines made before), and a dispose never frees weights under a running inference.
/// </summary>
public class DisposalTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void DisposedModelFreesEveryNativeWeightAndRefusesWorkspacesMadeBefore(int threads)
    {
        var model = SparseModel.Load(TinyModel, new SparseModelOptions { Threads = threads }, Cancel);
        using var workspace = model.CreateWorkspace();
        float[] image = RandomImages(1, seed: 3)[0], scores = new float[model.OutputLength];
        model.Run(image, scores, workspace);
        var weights = model.Network.PlannedLayers.SelectMany(layer => layer.OwnedWeights).ToArray();
        Assert.NotEmpty(weights);
        Assert.DoesNotContain(weights, w => w.IsFreed);

        model.Dispose();

        Assert.True(model.IsDisposed);
        Assert.All(weights, w => Assert.True(w.IsFreed));
        Assert.Throws<ObjectDisposedException>(() => model.Run(image, scores, workspace));
        Assert.Throws<ObjectDisposedException>(() => model.Network.Run(image, scores, workspace));
        Assert.Throws<ObjectDisposedException>(() => model.CreateWorkspace());
        model.Dispose(); // a second dispose does nothing
        // Names, shapes and the plan stay readable.
        Assert.Equal([3, Resolution, Resolution], model.InputShape);
        Assert.Contains("Total", model.Describe());
    }

    [Fact]
    public void UsingReleasesTheModelAtTheEndOfItsScope()
    {
        SparseModel escaped;
        using (var model = SparseModel.Load(TinyModel, cancellationToken: Cancel))
        {
            escaped = model;
            Assert.False(model.IsDisposed);
        }
        Assert.True(escaped.IsDisposed);
    }

    [Fact]
    public void DisposeWhileOtherThreadsScoreLetsTheirInferencesFinishThenRefusesTheNext()
    {
        var model = SparseModel.Load(TinyModel, new SparseModelOptions { Threads = 1 }, Cancel);
        float[][] images = RandomImages(4, seed: 8);
        float[][] expected = ScoreDirectly(model, images);
        int scored = 0;
        var failures = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        // Where each thread is, so a thread that does not stop says where it hangs: 0 started, 1 in Run, 2 checking scores, 3 stopped.
        var phase = new int[4];
        var runs = new int[4];
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            using var workspace = model.CreateWorkspace();
            var scores = new float[model.OutputLength];
            for (int i = 0; ; i++)
            {
                try
                {
                    Volatile.Write(ref phase[t], 1);
                    model.Run(images[(t + i) % images.Length], scores, workspace);
                    Volatile.Write(ref phase[t], 2);
                    Volatile.Write(ref runs[t], i + 1);
                }
                catch (ObjectDisposedException)
                {
                    Volatile.Write(ref phase[t], 3);
                    return;
                }
                // A run that was let in finished on live weights: its scores are exact.
                if (!scores.AsSpan().SequenceEqual(expected[(t + i) % images.Length]))
                    failures.Add(new InvalidOperationException($"thread {t}, run {i}: wrong scores"));
                Interlocked.Increment(ref scored);
            }
        })).ToArray();
        foreach (var thread in threads) thread.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref scored) >= 20, Infrastructure.TestTimeouts.Scaled(TimeSpan.FromMinutes(1)));
        model.Dispose();
        foreach (var thread in threads)
            Assert.True(thread.Join(Infrastructure.TestTimeouts.Scaled(TimeSpan.FromMinutes(1))),
                $"a scoring thread did not stop after the dispose; per thread (0 started, 1 in Run, 2 checking scores, 3 stopped): " +
                $"phases {string.Join(",", phase)}, runs {string.Join(",", runs)}, {scored} inferences in all, disposed {model.IsDisposed}");
        Assert.Empty(failures);
        Assert.True(scored >= 20, $"only {scored} inferences before the dispose");
    }

    [Fact]
    public void DisposedTransformerDisposesItsModelAndRefusesEnginesAndCursorsMadeBefore()
    {
        var mlContext = new MLContext(seed: 1);
        float[][] images = RandomImages(3, seed: 4);
        var data = LoadPixels(mlContext, images);
        using var modelFile = TinyModelFile();
        // Two threads per row: the cursor scores each row when it is read (no consolidating cursor scoring ahead on
        // ML.NET's worker threads, which the next test covers), so the row after the dispose must throw.
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions
        {
            ModelFile = modelFile.Path, InputColumnName = "input", OutputColumnName = "output", ThreadsPerRow = 2,
        }).Fit(data);
        var engine = mlContext.Model.CreatePredictionEngine<TinyInput, TinyOutput>(transformer);
        var scored = transformer.Transform(data);
        using var cursor = scored.GetRowCursor(scored.Schema);
        var getter = cursor.GetGetter<VBuffer<float>>(scored.Schema["output"]);
        Assert.NotEmpty(engine.Predict(new TinyInput { Pixels = images[0] }).Scores);
        var buffer = default(VBuffer<float>);
        Assert.True(cursor.MoveNext());
        getter(ref buffer);

        transformer.Dispose();

        Assert.True(transformer.IsDisposed);
        Assert.True(transformer.Model.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => engine.Predict(new TinyInput { Pixels = images[1] }));
        // The cursor scores a row on MoveNext or in the getter: either way the next row refuses.
        Assert.IsType<ObjectDisposedException>(Record.Exception(() => { Assert.True(cursor.MoveNext()); getter(ref buffer); }));
        Assert.Throws<ObjectDisposedException>(() => transformer.Transform(data));
        Assert.Throws<ObjectDisposedException>(() => transformer.GetRowToRowMapper(data.Schema));
        engine.Dispose();
    }

    /// <summary>
    /// A consolidating cursor (one thread per row) scores rows ahead on ML.NET's worker threads: after a dispose, rows it
    /// had scored before come back with their exact scores, and the first row it had not ends the cursor with an
    /// <see cref="ObjectDisposedException"/> (wrapped by ML.NET's worker); never a wrong score.
    /// </summary>
    [Fact]
    public void DisposedTransformerEndsAConsolidatingCursorWithExactScoresOrObjectDisposed()
    {
        var mlContext = new MLContext(seed: 1);
        float[][] images = RandomImages(64, seed: 5);
        var data = LoadPixels(mlContext, images);
        using var modelFile = TinyModelFile();
        var transformer = mlContext.Transforms.ScoreSparseMobileNet("output", "input", modelFile.Path).Fit(data);
        float[][] expected = ScoreDirectly(transformer.Model, images);
        var scored = transformer.Transform(data);
        using var cursor = scored.GetRowCursor(scored.Schema);
        var getter = cursor.GetGetter<VBuffer<float>>(scored.Schema["output"]);
        var buffer = default(VBuffer<float>);
        Assert.True(cursor.MoveNext());
        getter(ref buffer);
        Assert.Equal(expected[0], buffer.DenseValues().ToArray());

        transformer.Dispose();

        int row = 1;
        var error = Record.Exception(() =>
        {
            for (; cursor.MoveNext(); row++)
            {
                getter(ref buffer);
                Assert.Equal(expected[row], buffer.DenseValues().ToArray());
            }
        });
        Assert.True(error is null ? row == images.Length : error is ObjectDisposedException || error.InnerException is ObjectDisposedException,
            $"after {row} rows: expected exact scores or ObjectDisposedException, got {error}");
    }

    [Fact]
    public void DisposingTheFittedOrLoadedChainDisposesTheScorerAndTheEstimatorFitsAgain()
    {
        var mlContext = new MLContext(seed: 1);
        float[][] images = RandomImages(2, seed: 6);
        var data = LoadPixels(mlContext, images);
        using var modelFile = TinyModelFile();
        using var zip = new TemporaryFile(".zip");
        var estimator = mlContext.Transforms.ScoreSparseMobileNet("output", "input", modelFile.Path);
        var pipeline = mlContext.Transforms.CopyColumns("copy", "input").Append(estimator);

        var chain = pipeline.Fit(data);
        float[][] before = ReadVectors(chain.Transform(data), "output");
        mlContext.Model.Save(chain, data.Schema, zip.Path);
        var scorer = chain.LastTransformer;
        ((IDisposable)chain).Dispose(); // ML.NET's TransformerChain disposes the transformers that are IDisposable
        Assert.True(scorer.IsDisposed);

        var refit = estimator.Fit(data);
        Assert.NotSame(scorer, refit);
        Assert.Equal(before, ReadVectors(refit.Transform(data), "output"));
        refit.Dispose();

        var loaded = mlContext.Model.Load(zip.Path, out _);
        var loadedScorer = Assert.Single(((TransformerChain<ITransformer>)loaded).OfType<SparseMobileNetTransformer>());
        Assert.Equal(before, ReadVectors(loaded.Transform(data), "output"));
        ((IDisposable)loaded).Dispose();
        Assert.True(loadedScorer.IsDisposed);
    }
}
