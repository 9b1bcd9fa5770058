using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text;
using Microsoft.ML.Sparse.Benchmarks.EndToEnd;

namespace Microsoft.ML.Sparse.Benchmarks.Startup;

/// <summary>
/// `startup [--runs N] [--model NAME] [--baseline DIR]`: cold start, measured in fresh processes. For MobileNet v1 and v2 pruned to 90%, each
/// run starts one process per case (in rotating order, so a slow stretch of a shared machine hits every case alike):
/// ScoreSparseMobileNet and ApplyOnnxModel in a PredictionEngine, raw SparseModel and a raw ONNX Runtime session (one
/// thread each), and the Native AOT sample when build/publish-aot.sh has published it. Each process reports its load time
/// (ML.NET: Fit plus CreatePredictionEngine), its 1st, 2nd and 10th prediction, the sum of its first 100, the median of
/// 200 more (steady state) and the resident memory it gained (one more process per run times SparseModel.Load stage by
/// stage); this process adds the wall time from process start to the
/// first scores. Writes docs/benchmarks/startup-results.md with the median and the minimum over the runs. --baseline adds
/// one more case: the JIT build of samples/SparseMobileNet.Aot in DIR (its bin/Release/net10.0 copied from another
/// commit), to compare two versions of the engine side by side.
/// </summary>
internal static class StartupRunner
{
    private const int Predictions = 100, Steady = 200;

    private sealed record Case(string Name, string Kind);

    private static readonly Case[] Cases =
    [
        new("ScoreSparseMobileNet", "mlnet-sparse"),
        new("ApplyOnnxModel", "mlnet-onnx"),
        new("SparseModel", "sparse"),
        new("ONNX Runtime session", "ort"),
        new("SparseModel, Native AOT", "aot"),
        new("SparseModel, --baseline build", "baseline"),
        new("SparseModel.Load stage by stage", "phases"),
    ];

    private static readonly (string Key, string Header, double Scale)[] PhaseColumns =
    [
        ("read_ms", "read + protobuf parse (ms)", 1), ("lower_ms", "lower + fuse (ms)", 1), ("plan_ms", "plan: weight formats, buffers (ms)", 1),
        ("warmup_ms", "warm-up inference (ms)", 1), ("load_ms", "total (ms)", 1),
    ];

    private static readonly (string Key, string Header, double Scale)[] Columns =
    [
        ("load_ms", "Fit / load (ms)", 1), ("p1_ms", "1st (ms)", 1), ("p2_ms", "2nd (ms)", 1), ("p10_ms", "10th (ms)", 1),
        ("first100_ms", "first 100 (ms)", 1), ("steady_ms", "steady (ms)", 1), ("start_to_scores_ms", "process start to 1st scores (ms)", 1),
        ("rss_load_kib", "RSS after load (MiB)", 1 / 1024.0), ("rss_kib", "RSS after 300 (MiB)", 1 / 1024.0), ("managed_kib", "managed heap kept (MiB)", 1 / 1024.0),
    ];

    public static int Run(string[] args)
    {
        int runs = IntArgument(args, "--runs", 5);
        int modelFlag = Array.IndexOf(args, "--model"), baselineFlag = Array.IndexOf(args, "--baseline");
        string? baseline = baselineFlag >= 0 && baselineFlag + 1 < args.Length ? Path.GetFullPath(args[baselineFlag + 1]) : null;
        string[] models = modelFlag >= 0 && modelFlag + 1 < args.Length ? [args[modelFlag + 1]] : ["mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224"];
        string root = BenchmarkModels.RepositoryRoot;
        string sampleDll = Path.Combine(root, "samples", "SparseMobileNet.Aot", "bin", "Release", "net10.0", "SparseMobileNet.Aot.dll");
        string aotBinary = Path.Combine(root, "artifacts", "aot", OperatingSystem.IsWindows() ? "SparseMobileNet.Aot.exe" : "SparseMobileNet.Aot");
        if (!File.Exists(sampleDll))
        {
            Console.Error.WriteLine($"'{sampleDll}' is missing: build the solution in Release first (run-startup.sh does).");
            return 1;
        }
        bool aot = File.Exists(aotBinary);
        if (!aot) Console.WriteLine($"// {aotBinary} not found: the Native AOT row is left out (build/publish-aot.sh publishes it).");

        var report = new StringBuilder();
        report.AppendLine("# Start-up: fresh processes, first predictions");
        report.AppendLine();
        report.AppendLine(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} logical CPUs, " +
            $"Vector512 {(Vector512.IsHardwareAccelerated ? "accelerated" : "not accelerated")}, .NET {Environment.Version}; one thread per inference; " +
            $"each cell: median over {runs} fresh processes per case (minimum in parentheses). Command: tests/Microsoft.ML.Sparse.Benchmarks/run-startup.sh");
        foreach (string model in models)
        {
            string path = BenchmarkModels.Get(model, 0.9);
            var probe = SparseModel.Load(path, new SparseModelOptions { Threads = 1 });
            var samples = Cases.ToDictionary(c => c.Name, _ => new List<Dictionary<string, double>>());
            for (int run = 0; run < runs; run++)
            {
                for (int i = 0; i < Cases.Length; i++)
                {
                    Case c = Cases[(i + run) % Cases.Length];
                    if (c.Kind == "aot" && !aot) continue;
                    if (c.Kind == "baseline" && baseline is null) continue;
                    (string file, string arguments) = c.Kind switch
                    {
                        "sparse" => (DotnetHost(), $"exec \"{sampleDll}\" \"{path}\" --predictions {Predictions} --steady {Steady}"),
                        "baseline" => (DotnetHost(), $"exec \"{Path.Combine(baseline!, "SparseMobileNet.Aot.dll")}\" \"{path}\" --predictions {Predictions} --steady {Steady}"),
                        "aot" => (aotBinary, $"\"{path}\" --predictions {Predictions} --steady {Steady}"),
                        _ => (DotnetHost(), $"exec \"{typeof(StartupRunner).Assembly.Location}\" startup-child {c.Kind} \"{path}\" {probe.InputName} {probe.OutputName} " +
                            $"{probe.InputLength} {probe.OutputLength} {Predictions} {Steady}"),
                    };
                    var values = RunProcess(file, arguments);
                    samples[c.Name].Add(values);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"// {model} run {run + 1} {c.Name}: load {values.GetValueOrDefault("load_ms"):0.0} ms, 1st {values.GetValueOrDefault("p1_ms"):0.0}, " +
                        $"2nd {values.GetValueOrDefault("p2_ms"):0.0}, first 100 {values.GetValueOrDefault("first100_ms"):0}, steady {values.GetValueOrDefault("steady_ms"):0.00}, " +
                        $"start to scores {values.GetValueOrDefault("start_to_scores_ms"):0}, RSS {values.GetValueOrDefault("rss_kib") / 1024:0.0} MiB"));
                }
            }
            report.AppendLine();
            report.AppendLine(CultureInfo.InvariantCulture, $"## {model} pruned to 90% (1x1 and classifier weights, OnnxPruner)");
            report.AppendLine();
            report.AppendLine("| case | " + string.Join(" | ", Columns.Select(c => c.Header)) + " |");
            report.AppendLine("|---|" + string.Concat(Columns.Select(_ => "---:|")));
            foreach (Case c in Cases.Where(c => c.Kind != "phases" && samples[c.Name].Count > 0))
                report.AppendLine($"| {c.Name} | " + string.Join(" | ", Columns.Select(column => Cell(samples[c.Name], column.Key, column.Scale))) + " |");
            report.AppendLine();
            report.AppendLine("Where SparseModel.Load's time goes in a fresh JIT process (each stage includes compiling its code):");
            report.AppendLine();
            report.AppendLine("| " + string.Join(" | ", PhaseColumns.Select(c => c.Header)) + " |");
            report.AppendLine("|" + string.Concat(PhaseColumns.Select(_ => "---:|")));
            report.AppendLine("| " + string.Join(" | ", PhaseColumns.Select(column => Cell(samples["SparseModel.Load stage by stage"], column.Key, column.Scale))) + " |");
        }
        report.AppendLine();
        report.AppendLine("Fit / load: ML.NET rows time `Fit` on an empty data view plus `CreatePredictionEngine`; raw rows `SparseModel.Load` + `CreateWorkspace` " +
            "or the `InferenceSession` constructor. RSS: resident memory gained since the start of `Main` (runtime start-up excluded); " +
            "managed heap kept: `GC.GetTotalMemory(true)` at the end, model still referenced.");

        string folder = Path.Combine(root, "docs", "benchmarks");
        Directory.CreateDirectory(folder);
        string output = Path.Combine(folder, "startup-results.md");
        File.WriteAllText(output, report.ToString());
        Console.WriteLine(report);
        Console.WriteLine($"wrote {output}");
        return 0;
    }

    /// <summary>Runs one fresh process; parses its key=value lines and times process start to its "first_scores" line.</summary>
    private static Dictionary<string, double> RunProcess(string file, string arguments)
    {
        var info = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var values = new Dictionary<string, double>();
        var errors = new StringBuilder();
        long start = Stopwatch.GetTimestamp();
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (errors) errors.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        while (process.StandardOutput.ReadLine() is { } line)
        {
            if (line == "first_scores") values["start_to_scores_ms"] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            else if (line.Split('=', 2) is [var key, var value] && double.TryParse(value, CultureInfo.InvariantCulture, out double number)) values[key] = number;
        }
        process.WaitForExit();
        if (process.ExitCode != 0 || !values.ContainsKey("p1_ms"))
            throw new InvalidOperationException($"'{file} {arguments}' failed (exit code {process.ExitCode}): {errors}");
        return values;
    }

    private static string Cell(List<Dictionary<string, double>> runs, string key, double scale)
    {
        double[] values = runs.Where(r => r.ContainsKey(key)).Select(r => r[key] * scale).Order().ToArray();
        if (values.Length == 0) return "";
        double median = values.Length % 2 == 1 ? values[values.Length / 2] : (values[values.Length / 2 - 1] + values[values.Length / 2]) / 2;
        string format = median >= 100 ? "0" : median >= 10 ? "0.0" : "0.00";
        return string.Create(CultureInfo.InvariantCulture, $"{median.ToString(format, CultureInfo.InvariantCulture)} ({values[0].ToString(format, CultureInfo.InvariantCulture)})");
    }

    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    private static int IntArgument(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
