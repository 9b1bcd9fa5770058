using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Onnx;

namespace SparseMobileNet.Commands;

/// <summary>
/// classify [imageFolder] [model.onnx] [--labels file] [--sparsity 0.9]: prunes a copy of the model and prints, per
/// image, the top-5 classes and the PredictionEngine latency of ApplyOnnxModel (dense), ApplyOnnxModel (pruned) and
/// ScoreSparseMobileNet (pruned), then the median latencies and speed-ups.
/// </summary>
internal static class ClassifyCommand
{
    private const int TimedRepeats = 5;

    public static int Run(string[] args)
    {
        var (imageFolder, modelFile, labelsFile, sparsity) = ParseArguments(args);
        using var inputs = ClassifyInputs.Resolve(imageFolder, modelFile, labelsFile);
        var mlContext = new MLContext(seed: 1);

        string prunedFile = Path.Combine(inputs.WorkFolder, "pruned.onnx");
        var report = OnnxPruner.Prune(inputs.ModelFile, prunedFile, new PruningOptions { TargetSparsity = sparsity });
        var sparseModel = SparseModel.Load(prunedFile, new SparseModelOptions { Threads = 1 });
        Console.WriteLine($"Model {inputs.ModelFile}: input '{sparseModel.InputName}' [{string.Join(", ", sparseModel.InputShape)}], output '{sparseModel.OutputName}' [{string.Join(", ", sparseModel.OutputShape)}]");
        Console.WriteLine($"Pruned copy: {report.PrunedLayersSparsity:P1} sparsity in the pruned layers ({report.OverallSparsityAfter:P1} of all weights), no fine-tuning.");

        string[] imageNames = Directory.EnumerateFiles(inputs.ImageFolder)
            .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".bmp" or ".jpg" or ".jpeg" or ".png")
            .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        if (imageNames.Length == 0) throw new ArgumentException($"No .bmp/.jpg/.png images in '{inputs.ImageFolder}'.");
        var pixels = ExtractPixels(mlContext, inputs.ImageFolder, imageNames, sparseModel.InputShape);
        string[] labels = inputs.LoadLabels(sparseModel.OutputLength);

        // Every scorer single-threaded (ONNX Runtime intra-op threads and ThreadsPerRow = 1): the comparison is per core.
        OnnxOptions OnnxRuntime(string file) => new()
        {
            ModelFile = file, InputColumns = [sparseModel.InputName], OutputColumns = [sparseModel.OutputName], IntraOpNumThreads = 1, InterOpNumThreads = 1,
        };
        var scorers = new (string Name, IEstimator<ITransformer> Estimator)[]
        {
            ("ApplyOnnxModel dense", mlContext.Transforms.ApplyOnnxModel(OnnxRuntime(inputs.ModelFile))),
            ("ApplyOnnxModel pruned", mlContext.Transforms.ApplyOnnxModel(OnnxRuntime(prunedFile))),
            ("ScoreSparseMobileNet pruned", mlContext.Transforms.ScoreSparseMobileNet(sparseModel.OutputName, sparseModel.InputName, prunedFile)),
        };
        var results = scorers.Select(s => ScoreEach(mlContext, s.Estimator, pixels, sparseModel)).ToArray();

        for (int image = 0; image < imageNames.Length; image++)
        {
            Console.WriteLine();
            Console.WriteLine(imageNames[image]);
            for (int s = 0; s < scorers.Length; s++)
            {
                var top5 = TopK(results[s].Scores[image], 5).Select(i => $"{ShortLabel(labels[i])} {results[s].Scores[image][i]:0.000}");
                Console.WriteLine($"  {scorers[s].Name,-28} {results[s].Milliseconds[image],8:0.00} ms   {string.Join(" | ", top5)}");
            }
        }

        Console.WriteLine();
        Console.WriteLine($"Median PredictionEngine latency over {imageNames.Length} images (each the median of {TimedRepeats} runs, 1 thread each):");
        double[] medians = results.Select(r => Median(r.Milliseconds)).ToArray();
        for (int s = 0; s < scorers.Length; s++)
            Console.WriteLine($"  {scorers[s].Name,-28} {medians[s],8:0.00} ms   speed-up vs dense ONNX Runtime {medians[0] / medians[s]:0.00}x");
        int agree = Enumerable.Range(0, imageNames.Length).Count(i => TopK(results[0].Scores[i], 1)[0] == TopK(results[2].Scores[i], 1)[0]);
        Console.WriteLine($"  Top-1 of the pruned sparse model equals the dense model's on {agree} of {imageNames.Length} images.");
        if (agree * 2 < imageNames.Length)
            Console.WriteLine($"  (One-shot magnitude pruning without fine-tuning loses accuracy at high sparsity; try a lower --sparsity than {sparsity}.)");
        if (inputs.Generated) Console.WriteLine("  (Generated model with random weights: the class names mean nothing; the timings do.)");
        return 0;
    }

    private static (string? ImageFolder, string? ModelFile, string? LabelsFile, float Sparsity) ParseArguments(string[] args)
    {
        var positional = new List<string>();
        string? labels = null;
        float sparsity = 0.9f;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--labels" when i + 1 < args.Length:
                    labels = args[++i];
                    break;
                case "--sparsity" when i + 1 < args.Length:
                    if (!float.TryParse(args[++i], NumberStyles.Float, CultureInfo.InvariantCulture, out sparsity) || sparsity is < 0f or >= 1f)
                        throw new ArgumentException($"--sparsity takes a fraction in [0, 1), got '{args[i]}'.");
                    break;
                case var option when option.StartsWith("--", StringComparison.Ordinal):
                    throw new ArgumentException($"Unknown or incomplete option '{option}'; classify takes [imageFolder] [model.onnx] [--labels file] [--sparsity 0.9].");
                default:
                    positional.Add(args[i]);
                    break;
            }
        }
        if (positional.Count > 2) throw new ArgumentException($"classify takes at most an image folder and a model; got '{string.Join(" ", positional)}'.");
        return (positional.ElementAtOrDefault(0), positional.ElementAtOrDefault(1), labels, sparsity);
    }

    /// <summary>
    /// Each image through LoadImages -> ResizeImages (centred crop) -> ExtractPixels with x/127.5 - 1 (the coral
    /// MobileNets' preprocessing; ExtractPixels computes (pixel - offset) * scale), as CHW float vectors.
    /// </summary>
    private static IDataView ExtractPixels(MLContext mlContext, string folder, string[] imageNames, IReadOnlyList<int> inputShape)
    {
        if (inputShape.Count != 3 || inputShape[0] != 3)
            throw new NotSupportedException($"classify feeds RGB images in CHW layout; the model's input is [{string.Join(", ", inputShape)}].");
        int height = inputShape[1], width = inputShape[2];
        var images = mlContext.Data.LoadFromEnumerable(imageNames.Select(name => new ImagePath { Path = name }));
        var preprocess = mlContext.Transforms.LoadImages("image", folder, nameof(ImagePath.Path))
            .Append(mlContext.Transforms.ResizeImages("image", width, height, "image", ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
            .Append(mlContext.Transforms.ExtractPixels("pixels", "image", offsetImage: 127.5f, scaleImage: 1f / 127.5f));
        var extracted = preprocess.Fit(images).Transform(images);
        // Materialise the pixels once so that the timings below measure the scorers only.
        return mlContext.Data.Cache(mlContext.Transforms.DropColumns("image").Fit(extracted).Transform(extracted));
    }

    /// <summary>
    /// Runs <paramref name="predict"/> until the JIT has moved the hot code to its optimised tier (tiered compilation
    /// recompiles a method after 30 calls, in the background, ~100 ms later): at least 40 calls and half a second.
    /// Without it a short image list would time the engine's first-tier code.
    /// </summary>
    private static void WarmUp(Action predict)
    {
        long start = Stopwatch.GetTimestamp();
        for (int calls = 0; calls < 40 || Stopwatch.GetElapsedTime(start).TotalMilliseconds < 500; calls++) predict();
    }

    /// <summary>Scores every image with one PredictionEngine (after a warm-up), timing each as the median of a few runs.</summary>
    private static (float[][] Scores, double[] Milliseconds) ScoreEach(MLContext mlContext, IEstimator<ITransformer> scorer, IDataView pixels, SparseModel model)
    {
        var renamed = mlContext.Transforms.CopyColumns(model.InputName, "pixels").Fit(pixels).Transform(pixels);
        var transformer = scorer.Fit(renamed);
        var inputSchema = SchemaDefinition.Create(typeof(PixelInput));
        inputSchema[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.InputShape.ToArray());
        inputSchema[0].ColumnName = model.InputName;
        var outputSchema = SchemaDefinition.Create(typeof(ScoreOutput));
        outputSchema[0].ColumnName = model.OutputName;
        var engine = mlContext.Model.CreatePredictionEngine<PixelInput, ScoreOutput>(transformer, inputSchemaDefinition: inputSchema, outputSchemaDefinition: outputSchema);

        var inputs = mlContext.Data.CreateEnumerable<PixelInput>(pixels, reuseRowObject: false).ToArray();
        var output = new ScoreOutput();
        WarmUp(() => engine.Predict(inputs[0], ref output));
        var scores = new float[inputs.Length][];
        var milliseconds = new double[inputs.Length];
        var runs = new double[TimedRepeats];
        for (int i = 0; i < inputs.Length; i++)
        {
            for (int r = 0; r < TimedRepeats; r++)
            {
                long start = Stopwatch.GetTimestamp();
                engine.Predict(inputs[i], ref output);
                runs[r] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            milliseconds[i] = Median(runs);
            scores[i] = output.Scores.ToArray();
        }
        return (scores, milliseconds);
    }

    /// <summary>The first of a label's synonyms ("tench, Tinca tinca" -> "tench").</summary>
    private static string ShortLabel(string label) => label.Split(',')[0];

    private static int[] TopK(float[] scores, int k) =>
        scores.Select((score, index) => (score, index)).OrderByDescending(p => p.score).Take(k).Select(p => p.index).ToArray();

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private sealed class ImagePath
    {
        public string Path { get; set; } = "";
    }

    private sealed class PixelInput
    {
        [ColumnName("pixels")]
        public float[] Pixels { get; set; } = [];
    }

    private sealed class ScoreOutput
    {
        public float[] Scores { get; set; } = [];
    }
}
