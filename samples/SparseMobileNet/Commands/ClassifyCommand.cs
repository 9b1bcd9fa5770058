using System.CommandLine;
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Onnx;

namespace SparseMobileNet.Commands;

/// <summary>
/// <c>mlsparse classify [imageFolder] [model.onnx] [--labels file] [--sparsity S] [--calibration DIR]</c>: prunes a copy
/// of the model and prints, per image, the top-5 classes and the PredictionEngine latency of ApplyOnnxModel (dense),
/// ApplyOnnxModel (pruned) and ScoreSparseMobileNet (pruned), then the median latencies and speed-ups. Without arguments
/// it runs on ../shared beside the repository (pruned by layer-wise reconstruction calibrated on every other photo, to
/// <see cref="CalibratedSparsity"/>), or on a generated model and images (magnitude pruning, 90%).
/// </summary>
internal sealed class ClassifyCommand
{
    private const int TimedRepeats = 5;

    /// <summary>The default sparsity of a calibrated run: the one at which reconstruction keeps most of the dense model's
    /// top-1 answers on photos it was not calibrated on (docs/pruning.md); magnitude pruning defaults to 0.9.</summary>
    private const float CalibratedSparsity = 0.5f;

    private readonly Argument<DirectoryInfo> _images = new Argument<DirectoryInfo>("images")
    {
        Description = "Folder of .bmp/.jpg/.png images (default: ../shared/images, or generated images)",
        Arity = ArgumentArity.ZeroOrOne,
    }.AcceptExistingOnly();
    private readonly Argument<FileInfo> _model = new Argument<FileInfo>("model")
    {
        Description = "Dense ONNX model to prune and compare (default: ../shared's MobileNet v1, or a generated one)",
        Arity = ArgumentArity.ZeroOrOne,
    }.AcceptExistingOnly();
    private readonly Option<FileSystemInfo> _labels = new Option<FileSystemInfo>("--labels")
    {
        Description = "Class names: a JSON array or one name per line, or a folder holding ../shared/labels' files",
    }.AcceptExistingOnly();
    private readonly Option<float> _sparsity = CommonOptions.Sparsity(required: false);
    private readonly Option<DirectoryInfo> _calibration = new Option<DirectoryInfo>("--calibration")
    {
        Description = "Prune by layer-wise reconstruction calibrated on this folder's images (default without arguments: every other ../shared photo)",
    }.AcceptExistingOnly();

    public static Command Create(CommandContext context)
    {
        var classify = new ClassifyCommand();
        var command = new Command("classify",
            "Prune a copy of a MobileNet and compare ApplyOnnxModel (dense and pruned) with ScoreSparseMobileNet on a folder of images: top-5 and latency")
        {
            classify._images, classify._model, classify._labels, classify._sparsity, classify._calibration,
        };
        MLSparseCli.SetHandler(command, context, parsed => classify.Run(parsed, context));
        return command;
    }

    private int Run(ParseResult parsed, CommandContext context)
    {
        var output = context.Output;
        using var inputs = ClassifyInputs.Resolve(parsed.GetValue(_images)?.FullName, parsed.GetValue(_model)?.FullName, parsed.GetValue(_labels)?.FullName, output);
        var mlContext = new MLContext(seed: 1);

        string[] imageNames = Directory.EnumerateFiles(inputs.ImageFolder)
            .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".bmp" or ".jpg" or ".jpeg" or ".png")
            .Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        if (imageNames.Length == 0) throw new ArgumentException($"No .bmp/.jpg/.png images in '{inputs.ImageFolder}'.");

        // The default run on ../shared calibrates on every other photo, so the rest show answers on unseen photos.
        string? calibrationFolder = parsed.GetValue(_calibration)?.FullName;
        var calibrationPhotos = calibrationFolder is null && inputs.SharedPhotos && imageNames.Length > 1
            ? imageNames.Where((_, i) => i % 2 == 0).ToHashSet(StringComparer.Ordinal)
            : [];
        bool calibrated = calibrationFolder is not null || calibrationPhotos.Count > 0;
        float sparsity = parsed.GetResult(_sparsity) is { Implicit: false } || !calibrated ? parsed.GetValue(_sparsity) : CalibratedSparsity;
        var pruning = new PruningOptions { TargetSparsity = sparsity };
        if (calibrated)
        {
            pruning.Method = PruningMethod.Reconstruction;
            pruning.Calibration = calibrationFolder is not null
                ? new CalibrationOptions { ImageFolder = calibrationFolder }
                : new CalibrationOptions { ImagePaths = calibrationPhotos.Order(StringComparer.Ordinal).Select(name => Path.Combine(inputs.ImageFolder, name)).ToList() };
        }

        string prunedFile = Path.Combine(inputs.WorkFolder, "pruned.onnx");
        PruningReport report;
        long pruneStart = Stopwatch.GetTimestamp();
        using (var progress = context.Progress(parsed, $"Pruning {Path.GetFileName(inputs.ModelFile)}"))
        {
            pruning.Progress = new Progress<PruningProgress>(step => progress.Advance($"{step.Step} {step.Layer + 1}/{step.Layers} {step.LayerName}"));
            report = OnnxPruner.Prune(inputs.ModelFile, prunedFile, pruning);
        }
        double pruneSeconds = Stopwatch.GetElapsedTime(pruneStart).TotalSeconds;
        using var sparseModel = SparseModel.Load(prunedFile, new SparseModelOptions { Threads = 1 });
        output.WriteLine($"Model {inputs.ModelFile}: input '{sparseModel.InputName}' [{string.Join(", ", sparseModel.InputShape)}], output '{sparseModel.OutputName}' [{string.Join(", ", sparseModel.OutputShape)}]");
        string method = !calibrated ? "by weight magnitude"
            : calibrationFolder is not null ? $"by layer-wise reconstruction calibrated on the images in {calibrationFolder}"
            : $"by layer-wise reconstruction calibrated on {calibrationPhotos.Count} of the photos (marked 'calibration' below)";
        output.WriteLine($"Pruned copy: {report.PrunedLayersSparsity:P1} sparsity in the pruned layers ({report.OverallSparsityAfter:P1} of all weights), {method}, in {pruneSeconds:0} s; no fine-tuning.");
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
        (float[][] Scores, double[] Milliseconds)[] results;
        using (var progress = context.Progress(parsed, "Scoring", total: scorers.Length * imageNames.Length))
            results = scorers.Select(s => ScoreEach(mlContext, s.Estimator, pixels, sparseModel, imageNames, progress)).ToArray();

        for (int image = 0; image < imageNames.Length; image++)
        {
            output.WriteLine();
            output.WriteLine(calibrationPhotos.Contains(imageNames[image]) ? imageNames[image] + " (calibration)" : imageNames[image]);
            for (int s = 0; s < scorers.Length; s++)
            {
                var top5 = TopK(results[s].Scores[image], 5).Select(i => $"{ShortLabel(labels[i])} {results[s].Scores[image][i]:0.000}");
                output.WriteLine($"  {scorers[s].Name,-28} {results[s].Milliseconds[image],8:0.00} ms   {string.Join(" | ", top5)}");
            }
        }

        output.WriteLine();
        output.WriteLine($"Median PredictionEngine latency over {imageNames.Length} images (each the median of {TimedRepeats} runs, 1 thread each):");
        double[] medians = results.Select(r => Statistics.Median(r.Milliseconds)).ToArray();
        for (int s = 0; s < scorers.Length; s++)
            output.WriteLine($"  {scorers[s].Name,-28} {medians[s],8:0.00} ms   speed-up vs dense ONNX Runtime {medians[0] / medians[s]:0.00}x");
        bool[] agrees = Enumerable.Range(0, imageNames.Length).Select(i => TopK(results[0].Scores[i], 1)[0] == TopK(results[2].Scores[i], 1)[0]).ToArray();
        int agree = agrees.Count(a => a);
        output.WriteLine($"  Top-1 of the pruned sparse model equals the dense model's on {agree} of {imageNames.Length} images.");
        int[] unseen = Enumerable.Range(0, imageNames.Length).Where(i => !calibrationPhotos.Contains(imageNames[i])).ToArray();
        if (calibrationPhotos.Count > 0)
        {
            int unseenAgree = unseen.Count(i => agrees[i]);
            output.WriteLine($"  On the {unseen.Length} photos not used for calibration: {unseenAgree} of {unseen.Length}.");
            output.WriteLine(unseenAgree * 2 >= unseen.Length
                ? $"  At {sparsity:P0} sparsity, calibrated pruning keeps the model's answers on most photos it has not seen (magnitude pruning alone loses them by 50%, see docs/pruning.md)."
                : $"  At {sparsity:P0} sparsity the pruned model loses most answers on photos it has not seen; try a lower --sparsity.");
        }
        else if (agree * 2 < imageNames.Length)
            output.WriteLine(calibrated
                ? $"  (Calibrated one-shot pruning without fine-tuning still loses answers at this sparsity; try a lower --sparsity than {sparsity}.)"
                : $"  (One-shot magnitude pruning without fine-tuning loses accuracy at high sparsity; try --calibration DIR or a lower --sparsity than {sparsity}.)");
        if (inputs.Generated) output.WriteLine("  (Generated model with random weights: the class names mean nothing; the timings do.)");
        return MLSparseCli.Success;
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
    private static (float[][] Scores, double[] Milliseconds) ScoreEach(MLContext mlContext, IEstimator<ITransformer> scorer, IDataView pixels, SparseModel model,
        string[] imageNames, ProgressDisplay progress)
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
            milliseconds[i] = Statistics.Median(runs);
            scores[i] = output.Scores.ToArray();
            progress.Advance(imageNames[i]);
        }
        engine.Dispose();
        (transformer as IDisposable)?.Dispose();
        return (scores, milliseconds);
    }

    /// <summary>The first of a label's synonyms ("tench, Tinca tinca" -> "tench").</summary>
    private static string ShortLabel(string label) => label.Split(',')[0];

    private static int[] TopK(float[] scores, int k) =>
        scores.Select((score, index) => (score, index)).OrderByDescending(p => p.score).Take(k).Select(p => p.index).ToArray();

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
