using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Onnx;
using SkiaSharp;

namespace ScoringService;

/// <summary>
/// The usual ML.NET serving arrangement, as Microsoft.Extensions.ML's PredictionEnginePool builds it: one fitted
/// pipeline (ResizeImages -> ExtractPixels -> the scorer) shared by every request, and an ObjectPool of
/// PredictionEngines over it, since a PredictionEngine is not thread-safe. Every engine is single-threaded (the sparse
/// engine's ThreadsPerRow and ONNX Runtime's intra-op threads are 1): concurrency comes from the workers.
/// </summary>
internal sealed class ModelScorer : IDisposable
{
    private readonly ITransformer _pipeline;
    private readonly ObjectPool<PredictionEngine<ImageInput, ScoreOutput>> _engines;

    public ModelScorer(ServedModel served, ScoringServiceOptions options)
    {
        var mlContext = new MLContext(seed: 1);
        // The sparse engine's view of the file names the tensors and sizes both scorers need, and /model shows it.
        Model = SparseModel.Load(served.File, new SparseModelOptions { Threads = 1 });
        if (Model.InputShape.Count != 3 || Model.InputShape[0] != 3)
            throw new NotSupportedException($"The service feeds RGB images in CHW layout; the model's input is [{string.Join(", ", Model.InputShape)}].");
        int height = Model.InputShape[1], width = Model.InputShape[2];

        // x / 127.5 - 1 on a centred crop: the coral MobileNets' preprocessing (ExtractPixels computes (x - offset) * scale).
        var preprocess = mlContext.Transforms.ResizeImages("image", width, height, "image", ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center)
            .Append(mlContext.Transforms.ExtractPixels(Model.InputName, "image", offsetImage: 127.5f, scaleImage: 1f / 127.5f));
        IEstimator<ITransformer> scorer = options.Scorer switch
        {
            ScorerKind.Sparse => mlContext.Transforms.ScoreSparseMobileNet(Model.OutputName, Model.InputName, served.File),
            _ => mlContext.Transforms.ApplyOnnxModel(new OnnxOptions
            {
                ModelFile = served.File, InputColumns = [Model.InputName], OutputColumns = [Model.OutputName], IntraOpNumThreads = 1, InterOpNumThreads = 1,
            }),
        };
        // ML.NET 5 cannot declare an MLImage column of unknown size ([ImageType] without sizes registers a 0 x 0 type and
        // throws), and the input row only serves registered image types: the column is declared at the model's size,
        // and ResizeImages crops and resizes whatever size arrives.
        new ImageTypeAttribute(height, width).Register();
        var inputSchema = SchemaDefinition.Create(typeof(ImageInput));
        inputSchema[0].ColumnType = new ImageDataViewType(height, width);
        var empty = mlContext.Data.LoadFromEnumerable(Array.Empty<ImageInput>(), inputSchema);
        _pipeline = preprocess.Append(scorer).Fit(empty);

        var outputSchema = SchemaDefinition.Create(typeof(ScoreOutput));
        outputSchema[0].ColumnName = Model.OutputName;
        // OwnsTransformer = false: a pool disposes the engines it does not keep, and an engine that owns the pipeline would
        // dispose it (and the model every other engine scores with) along with itself.
        var engineOptions = new PredictionEngineOptions
        {
            IgnoreMissingColumns = true, InputSchemaDefinition = inputSchema, OutputSchemaDefinition = outputSchema, OwnsTransformer = false,
        };
        var policy = new EnginePolicy(() => mlContext.Model.CreatePredictionEngine<ImageInput, ScoreOutput>(_pipeline, engineOptions));
        _engines = new DefaultObjectPoolProvider { MaximumRetained = Math.Max(1, options.Workers) }.Create(policy);
        Kind = options.Scorer;
    }

    public SparseModel Model { get; }

    public ScorerKind Kind { get; }

    /// <summary>Scores one decoded image (any size: the pipeline crops and resizes it). Thread-safe.</summary>
    public float[] Score(SKBitmap bitmap)
    {
        using var image = MLImage.CreateFromPixels(bitmap.Width, bitmap.Height, MLPixelFormat.Bgra32, bitmap.GetPixelSpan());
        var engine = _engines.Get();
        try
        {
            return engine.Predict(new ImageInput { Image = image }).Scores;
        }
        finally
        {
            _engines.Return(engine);
        }
    }

    public void Dispose()
    {
        // Engines and transformers hold native sessions (ONNX Runtime) and, once the library makes them IDisposable, workspaces.
        (_engines as IDisposable)?.Dispose();
        (_pipeline as IDisposable)?.Dispose();
    }

    internal sealed class ImageInput
    {
        /// <summary>An image of any size (the pipeline crops and resizes it).</summary>
        [ColumnName("image")]
        [ImageType(1, 1)]
        public MLImage? Image { get; set; }
    }

    internal sealed class ScoreOutput
    {
        public float[] Scores { get; set; } = [];
    }

    private sealed class EnginePolicy(Func<PredictionEngine<ImageInput, ScoreOutput>> create) : IPooledObjectPolicy<PredictionEngine<ImageInput, ScoreOutput>>
    {
        public PredictionEngine<ImageInput, ScoreOutput> Create() => create();

        public bool Return(PredictionEngine<ImageInput, ScoreOutput> engine) => true;
    }
}
