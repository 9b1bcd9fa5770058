using Microsoft.ML.Sparse;
using SparseMobileNet;
using SparseMobileNet.Commands;

namespace SparseMobileNet.Tests;

/// <summary>The mlsparse command line: help, validation and exit codes, and a prune, inspect, classify and bench round trip.</summary>
public sealed class ToolTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("mlsparse-tests-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private sealed record Result(int ExitCode, string Output, string Error);

    private static Result Run(bool terminal, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = MLSparseCli.Invoke(args, output, error, terminal);
        return new Result(exitCode, output.ToString(), error.ToString());
    }

    private static Result Run(params string[] args) => Run(terminal: false, args);

    /// <summary>A small dense MobileNet v1 (width 0.25, 32x32, 10 classes) in the test folder.</summary>
    private string DenseModel()
    {
        string path = Path.Combine(_folder, "dense.onnx");
        File.WriteAllBytes(path, SyntheticMobileNet.Create(new SyntheticMobileNetOptions { WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, Seed = 3 }));
        return path;
    }

    [Fact]
    public void HelpListsEveryCommandAndEachCommandHasItsOwn()
    {
        var root = Run("--help");
        Assert.Equal(0, root.ExitCode);
        foreach (string command in new[] { "classify", "prune", "inspect", "bench" }) Assert.Contains(command, root.Output);

        var prune = Run("prune", "--help");
        Assert.Equal(0, prune.ExitCode);
        Assert.Contains("Usage:", prune.Output);
        Assert.Contains("--sparsity", prune.Output);
        Assert.Contains("by weight magnitude", prune.Output);
        Assert.Contains("--calibration", prune.Output);
        Assert.Contains("--block <1|2|4|8>", prune.Output);

        foreach (var (command, option) in new[] { ("inspect", "--threads"), ("classify", "--labels"), ("bench", "--iterations") })
        {
            var help = Run(command, "-h");
            Assert.Equal(0, help.ExitCode);
            // Usage names the executable (mlsparse when installed, the test host here), then the command.
            Assert.Contains($" {command} ", help.Output[help.Output.IndexOf("Usage:", StringComparison.Ordinal)..]);
            Assert.Contains(option, help.Output);
        }
    }

    public static TheoryData<string[], string> BadCommandLines => new()
    {
        { ["frobnicate"], "Unrecognized command or argument 'frobnicate'" },
        { ["prune", "in.onnx"], "Required argument missing" },
        { ["prune", "missing.onnx", "out.onnx", "--sparsity", "0.5"], "File does not exist: 'missing.onnx'" },
        { ["inspect"], "Required argument missing" },
        { ["inspect", "model.onnx", "--threads", "0"], "--threads must be at least 1, got 0" },
        { ["bench", "model.onnx", "--rounds", "x"], "Cannot parse argument 'x' for option '--rounds'" },
        { ["classify", "--sparsity", "-0.1"], "--sparsity takes a fraction in [0, 1), got -0.1" },
    };

    [Theory]
    [MemberData(nameof(BadCommandLines))]
    public void BadArgumentsExitWithTwoAndSayWhatIsWrong(string[] args, string message)
    {
        // An existing model for the lines whose complaint is about something else.
        File.WriteAllBytes(Path.Combine(_folder, "model.onnx"), [1, 2, 3]);
        string[] rooted = args.Select(a => a == "model.onnx" ? Path.Combine(_folder, a) : a).ToArray();
        var result = Run(rooted);
        Assert.Equal(MLSparseCli.UsageError, result.ExitCode);
        Assert.Contains(message, result.Error);
        Assert.Contains("--help", result.Error);
        Assert.Equal("", result.Output);
    }

    [Fact]
    public void PruneWithoutSparsityIsAUsageError()
    {
        var result = Run("prune", DenseModel(), Path.Combine(_folder, "out.onnx"));
        Assert.Equal(MLSparseCli.UsageError, result.ExitCode);
        Assert.Contains("Option '--sparsity' is required", result.Error);
        Assert.False(File.Exists(Path.Combine(_folder, "out.onnx")));
    }

    [Fact]
    public void AnUnreadableModelExitsWithOneNamingTheFile()
    {
        string path = Path.Combine(_folder, "broken.onnx");
        File.WriteAllBytes(path, [0xff, 0xff, 0xff, 0x01]);
        foreach (string[] args in new[] { new[] { "inspect", path }, ["prune", path, Path.Combine(_folder, "o.onnx"), "--sparsity", "0.5"], ["bench", path] })
        {
            var result = Run(args);
            Assert.Equal(MLSparseCli.Failure, result.ExitCode);
            Assert.StartsWith($"mlsparse {args[0]}: ONNX model '{path}'", result.Error);
        }
    }

    [Fact]
    public void PruneThenInspectThenClassifyThenBench()
    {
        string dense = DenseModel(), pruned = Path.Combine(_folder, "pruned.onnx");
        var prune = Run("prune", dense, pruned, "--sparsity", "0.8", "--block", "4");
        Assert.Equal(0, prune.ExitCode);
        Assert.Contains($"Wrote {pruned}", prune.Output);
        Assert.Equal("", prune.Error);
        using (var model = SparseModel.Load(pruned, cancellationToken: TestContext.Current.CancellationToken))
            Assert.Contains(model.Network.Layers, layer => layer.Kind == "Pointwise" && layer.Sparsity >= 0.79f);

        var inspect = Run("inspect", pruned, "--threads", "1");
        Assert.Equal(0, inspect.ExitCode);
        Assert.Contains($"Model: {pruned}", inspect.Output);
        Assert.Contains("SpMM", inspect.Output);

        string images = Directory.CreateDirectory(Path.Combine(_folder, "images")).FullName;
        for (int i = 0; i < 2; i++) ClassifyInputs.WriteGeneratedImage(Path.Combine(images, $"image_{i}.png"), seed: i);
        var classify = Run("classify", images, pruned, "--sparsity", "0.5");
        Assert.Equal(0, classify.ExitCode);
        Assert.Contains("image_0.png", classify.Output);
        Assert.Contains("image_1.png", classify.Output);
        Assert.Contains("ScoreSparseMobileNet pruned", classify.Output);
        Assert.Contains("Median PredictionEngine latency over 2 images", classify.Output);
        // Redirected: no progress, no carriage returns.
        Assert.Equal("", classify.Error);
        Assert.DoesNotContain('\r', classify.Output);

        var bench = Run("bench", pruned, "--rounds", "1", "--iterations", "2");
        Assert.Equal(0, bench.ExitCode);
        Assert.Contains("speed-up (median):", bench.Output);
        Assert.Contains("max |sparse - ONNX Runtime|", bench.Output);
    }

    /// <summary>
    /// <c>prune --calibration</c> binds the reconstruction method: the output has the sparsity asked for, and on the images
    /// it was calibrated on its scores stay closer to the dense model's than magnitude pruning's do.
    /// </summary>
    [Fact]
    public void PruneWithCalibrationReconstructsAndStaysCloserToTheDenseModel()
    {
        string dense = DenseModel(), magnitude = Path.Combine(_folder, "magnitude.onnx"), calibrated = Path.Combine(_folder, "calibrated.onnx");
        string images = Directory.CreateDirectory(Path.Combine(_folder, "calibration")).FullName;
        for (int i = 0; i < 4; i++) ClassifyInputs.WriteGeneratedImage(Path.Combine(images, $"image_{i}.png"), seed: 10 + i);
        Assert.Equal(0, Run("prune", dense, magnitude, "--sparsity", "0.7").ExitCode);
        var prune = Run("prune", dense, calibrated, "--sparsity", "0.7", "--calibration", images, "--offset", "127.5", "--scale", "0.0078431");
        Assert.Equal(0, prune.ExitCode);
        Assert.Equal("", prune.Error);
        Assert.Contains($"Wrote {calibrated}", prune.Output);

        var cancel = TestContext.Current.CancellationToken;
        using var reference = SparseModel.Load(dense, cancellationToken: cancel);
        using var byMagnitude = SparseModel.Load(magnitude, cancellationToken: cancel);
        using var byReconstruction = SparseModel.Load(calibrated, cancellationToken: cancel);
        Assert.Contains(byReconstruction.Network.Layers, layer => layer.Kind == "Pointwise" && layer.Sparsity >= 0.69f);
        var options = new CalibrationOptions { ImageFolder = images };
        double magnitudeError = 0, reconstructionError = 0;
        var shape = reference.Network.InputShape;
        var views = new Microsoft.ML.Sparse.Onnx.Pruning.CalibrationInputs(options, new(shape.Channels, shape.Height, shape.Width, Hwc: false));
        foreach (float[] input in views.Enumerate(cancel))
        {
            float[] Scores(SparseModel model)
            {
                using var workspace = model.CreateWorkspace();
                var scores = new float[model.OutputLength];
                model.Run(input, scores, workspace);
                return scores;
            }
            float[] expected = Scores(reference), a = Scores(byMagnitude), b = Scores(byReconstruction);
            for (int i = 0; i < expected.Length; i++)
            {
                magnitudeError += (a[i] - expected[i]) * (double)(a[i] - expected[i]);
                reconstructionError += (b[i] - expected[i]) * (double)(b[i] - expected[i]);
            }
        }
        Assert.True(reconstructionError < magnitudeError, $"reconstruction {reconstructionError} vs magnitude {magnitudeError}");
    }

    [Fact]
    public void OnATerminalProgressGoesToStandardErrorAndIsErasedAndNoProgressSilencesIt()
    {
        string dense = DenseModel(), pruned = Path.Combine(_folder, "pruned.onnx");
        var shown = Run(terminal: true, "prune", dense, pruned, "--sparsity", "0.5");
        Assert.Equal(0, shown.ExitCode);
        Assert.Contains("\rPruning dense.onnx", shown.Error);
        Assert.EndsWith("\r", shown.Error); // the line is erased before the results
        Assert.DoesNotContain('\r', shown.Output);

        var silenced = Run(terminal: true, "prune", dense, pruned, "--sparsity", "0.5", "--no-progress");
        Assert.Equal(0, silenced.ExitCode);
        Assert.Equal("", silenced.Error);
        Assert.Equal(shown.Output, silenced.Output);
    }
}
