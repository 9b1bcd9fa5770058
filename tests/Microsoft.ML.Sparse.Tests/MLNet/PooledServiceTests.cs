using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.ObjectPool;
using static Microsoft.ML.Sparse.Tests.MLNet.MLNetTestData;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>
/// Hosting in a service, as Microsoft.Extensions.ML's PredictionEnginePool does it: one shared model (a singleton
/// ITransformer), an ObjectPool of PredictionEngines over it, and transient consumers on many threads. The package
/// itself is not served by this project's NuGet feed, so the test builds the same arrangement from
/// Microsoft.Extensions.DependencyInjection and Microsoft.Extensions.ObjectPool.
/// </summary>
public class PooledServiceTests
{
    [Fact]
    public async Task PooledPredictionEnginesInAServiceGiveTheEngineScores()
    {
        var mlContext = new MLContext(seed: 1);
        float[][] images = RandomImages(12, seed: 21);
        using var modelFile = TinyModelFile();
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(modelFile.Path).Fit(LoadPixels(mlContext, images));
        float[][] expected = ScoreDirectly(transformer.Model, images);

        var services = new ServiceCollection();
        services.AddSingleton(mlContext);
        services.AddSingleton<ITransformer>(transformer);
        services.AddSingleton<ObjectPoolProvider, DefaultObjectPoolProvider>();
        services.AddSingleton(provider => provider.GetRequiredService<ObjectPoolProvider>().Create(
            new PredictionEnginePolicy(provider.GetRequiredService<MLContext>(), provider.GetRequiredService<ITransformer>())));
        services.AddTransient<Classifier>();
        using var serviceProvider = services.BuildServiceProvider();

        var results = await Task.WhenAll(Enumerable.Range(0, 400).Select(i => Task.Run(
            () => (Index: i, Scores: serviceProvider.GetRequiredService<Classifier>().Score(images[i % images.Length])),
            TestContext.Current.CancellationToken)));

        foreach (var (index, scores) in results) Assert.Equal(expected[index % images.Length], scores);
    }

    private sealed class PredictionEnginePolicy(MLContext mlContext, ITransformer model) : PooledObjectPolicy<PredictionEngine<TinyInput, TinyOutput>>
    {
        // The pool disposes engines beyond the ones it keeps; they must not take the shared model with them.
        public override PredictionEngine<TinyInput, TinyOutput> Create() =>
            mlContext.Model.CreatePredictionEngine<TinyInput, TinyOutput>(model, new PredictionEngineOptions { OwnsTransformer = false });

        public override bool Return(PredictionEngine<TinyInput, TinyOutput> engine) => true;
    }

    private sealed class Classifier(ObjectPool<PredictionEngine<TinyInput, TinyOutput>> pool)
    {
        public float[] Score(float[] pixels)
        {
            var engine = pool.Get();
            try
            {
                return engine.Predict(new TinyInput { Pixels = pixels }).Scores;
            }
            finally
            {
                pool.Return(engine);
            }
        }
    }
}
