using Microsoft.ML.Sparse;
using Microsoft.ML.Sparse.Samples;

// Scores one ONNX MobileNet with the engine API alone (no ML.NET), as a Native AOT app:
//   SparseMobileNet.Aot <model.onnx> [--threads N] [--predictions N] [--steady N] [--max-width Vector256] [--scores FILE] [--no-warm-up]
// It prints, as key=value lines, the load time, the first predictions' times and resident memory (the start-up benchmark
// parses them), then the top-5 classes of a deterministic input. --scores writes the first prediction's scores (raw
// little-endian floats) so a test can compare them with the JIT engine's.
if (args.Length == 0 || args[0].StartsWith('-'))
{
    Console.Error.WriteLine("usage: SparseMobileNet.Aot <model.onnx> [--threads N] [--predictions N] [--steady N] [--max-width W] [--scores FILE] [--no-warm-up]");
    return 2;
}
string modelPath = args[0];
int threads = IntOption("--threads", 1), predictions = IntOption("--predictions", 100), steady = IntOption("--steady", 0);
string? scoresFile = Option("--scores");
SimdWidth maxWidth = Option("--max-width") is { } width ? Enum.Parse<SimdWidth>(width, ignoreCase: true) : SimdWidth.Auto;

try
{
    StartupReport.Begin();
    var model = SparseModel.Load(modelPath, new SparseModelOptions { Threads = threads, MaxSimdWidth = maxWidth, WarmUp = !args.Contains("--no-warm-up") });
    using var workspace = model.CreateWorkspace();
    StartupReport.Loaded();

    float[] input = StartupReport.DeterministicImage(model.InputLength);
    var output = new float[model.OutputLength];
    StartupReport.TimePredictions(() => model.Run(input, output, workspace), predictions, steady,
        afterFirst: () => { if (scoresFile is not null) File.WriteAllBytes(scoresFile, System.Runtime.InteropServices.MemoryMarshal.AsBytes(output.AsSpan()).ToArray()); });
    StartupReport.Finish(model.Network.Layers[0].Kernel, output);
    return 0;
}
catch (Exception e) when (e is IOException or OnnxModelException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

string? Option(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

int IntOption(string name, int fallback) => Option(name) is { } value ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : fallback;
