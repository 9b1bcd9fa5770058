using System.Globalization;
using System.Runtime.Intrinsics;
using System.Text;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>
/// `e2e [--quick | --targets] [--model NAME] [--sparsities 0,0.7,0.9] [--threads 1]`: runs <see cref="EndToEndBenchmarks"/> side by side in one BenchmarkDotNet run and
/// writes docs/benchmarks/e2e-results.md (medians and ratios) and e2e-results.csv (input of the chart tool). `--model` keeps
/// one model's rows (a shorter run, for a machine whose two vCPUs are not both available for long).
/// </summary>
internal static class EndToEndRunner
{
    public static int Run(string[] args)
    {
        bool quick = args.Contains("--quick"), targets = args.Contains("--targets");
        int modelFlag = Array.IndexOf(args, "--model");
        if (modelFlag >= 0)
        {
            // Besides the grid's models, any other file of ../shared/models (other widths, resolutions, exporters).
            if (modelFlag + 1 >= args.Length ||
                !(EndToEndBenchmarks.Models.Contains(args[modelFlag + 1]) || File.Exists(BenchmarkModels.SharedModelPath(args[modelFlag + 1]))))
            {
                Console.Error.WriteLine($"--model takes one of: {string.Join(", ", EndToEndBenchmarks.Models)}, or another model of ../shared/models by name");
                return 2;
            }
            EndToEndBenchmarks.Models = [args[modelFlag + 1]];
        }
        if (quick)
        {
            EndToEndBenchmarks.Sparsities = [0, 0.9];
            EndToEndBenchmarks.ThreadCounts = [1];
        }
        else if (targets)
        {
            // Only the rows the engine's targets name: 70% and 90%, 1 and 2 threads.
            EndToEndBenchmarks.Sparsities = [0.7, 0.9];
        }
        // --sparsities 0,0.7,0.9 and --threads 1: any grid (e.g. the family grid: every model dense, 70%, 90%, one thread).
        if (ListFlag(args, "--sparsities") is { } sparsities) EndToEndBenchmarks.Sparsities = sparsities;
        if (ListFlag(args, "--threads") is { } threads) EndToEndBenchmarks.ThreadCounts = threads.Select(t => (int)t).ToArray();

        // In-process: no per-benchmark project build, so the quick mode fits in two minutes.
        var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithLaunchCount(1).WithWarmupCount(quick ? 2 : 3).WithIterationCount(quick ? 5 : 9)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250));
        var config = ManualConfig.CreateEmpty()
            .AddJob(job)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddLogger(ConsoleLogger.Default)
            .AddExporter(MarkdownExporter.GitHub)
            .WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));

        string probeBefore = MachineScalingProbe.Measure();
        double peak = MachineScalingProbe.PeakGflops();
        Summary summary = BenchmarkRunner.Run<EndToEndBenchmarks>(config);
        string probeAfter = MachineScalingProbe.Measure();
        var results = summary.Reports.Where(r => r.ResultStatistics != null).Select(r => new Result(
            (string)r.BenchmarkCase.Parameters["Model"],
            r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo.Trim('\''),
            (int)r.BenchmarkCase.Parameters["Threads"],
            (double)r.BenchmarkCase.Parameters["Sparsity"],
            r.ResultStatistics!.Median / 1e6)).ToList();
        if (results.Count == 0)
        {
            Console.Error.WriteLine("No benchmark produced a result; see the log above.");
            return 1;
        }

        string folder = Path.Combine(BenchmarkModels.RepositoryRoot, "docs", "benchmarks");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "e2e-results.csv"), ToCsv(results));
        var macs = results.Select(r => (r.Model, r.Sparsity)).Distinct()
            .ToDictionary(key => key, key => SparseModel.Load(BenchmarkModels.Get(key.Model, key.Sparsity), new SparseModelOptions { Threads = 1 })
                .Network.Layers.Sum(layer => layer.ExecutedMacs));
        File.WriteAllText(Path.Combine(folder, "e2e-results.md"),
            ToMarkdown(results, summary, quick ? "quick mode" : targets ? "target rows only" : "full mode", (probeBefore, probeAfter), macs, peak));
        Console.WriteLine($"wrote {Path.Combine(folder, "e2e-results.md")} and e2e-results.csv");
        return 0;
    }

    private static double[]? ListFlag(string[] args, string flag)
    {
        int at = Array.IndexOf(args, flag);
        return at >= 0 && at + 1 < args.Length
            ? args[at + 1].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()
            : null;
    }

    private sealed record Result(string Model, string Engine, int Threads, double Sparsity, double MedianMs);

    private static string ToCsv(IEnumerable<Result> results)
    {
        var csv = new StringBuilder("model,engine,threads,sparsity,median_ms\n");
        foreach (var r in results)
            csv.Append(CultureInfo.InvariantCulture, $"{r.Model},{r.Engine},{r.Threads},{r.Sparsity},{r.MedianMs:0.0000}\n");
        return csv.ToString();
    }

    private static string ToMarkdown(List<Result> results, Summary summary, string mode, (string Before, string After) probe,
        Dictionary<(string Model, double Sparsity), long> macs, double peak)
    {
        string[] engines = results.Select(r => r.Engine).Distinct().ToArray();
        string baseline = engines[0];
        string sparse = engines.FirstOrDefault(e => e.StartsWith("Sparse engine", StringComparison.Ordinal)) ?? engines[^1];
        var md = new StringBuilder();
        md.AppendLine(CultureInfo.InvariantCulture, $"Measured {DateTime.UtcNow:yyyy-MM-dd} on {summary.HostEnvironmentInfo.Cpu.Value.ProcessorName} " +
            $"({Environment.ProcessorCount} cores; widest SIMD: {Isa()}), {summary.HostEnvironmentInfo.RuntimeVersion}, " +
            $"ONNX Runtime {typeof(OnnxRuntime.InferenceSession).Assembly.GetName().Version}, batch 1, {mode}.");
        md.AppendLine("Median milliseconds per image; ratio = sparse engine time / ONNX Runtime session time (lower is better).");
        md.AppendLine(CultureInfo.InvariantCulture, $"GFLOP/s = 2 x the MACs the sparse engine's kernels execute / its median time; % of peak against " +
            $"{peak:0} GFLOP/s per thread (one core's FMA peak, a register-only loop of FMAs measured before the run) x threads.");
        md.AppendLine();
        md.AppendLine($"| model | threads | sparsity | {string.Join(" | ", engines)} | ratio | speed-up | GFLOP/s | % of peak |");
        md.AppendLine($"|---|---:|---:|{string.Concat(engines.Select(_ => "---:|"))}---:|---:|---:|---:|");
        foreach (var group in results.GroupBy(r => (r.Model, r.Threads, r.Sparsity)).OrderBy(g => g.Key.Model).ThenBy(g => g.Key.Threads).ThenBy(g => g.Key.Sparsity))
        {
            double Median(string engine) => group.FirstOrDefault(r => r.Engine == engine)?.MedianMs ?? double.NaN;
            double ratio = Median(sparse) / Median(baseline);
            double gflops = 2.0 * macs[(group.Key.Model, group.Key.Sparsity)] / (Median(sparse) * 1e6);
            md.AppendLine(CultureInfo.InvariantCulture,
                $"| {group.Key.Model} | {group.Key.Threads} | {group.Key.Sparsity * 100:0}% | {string.Join(" | ", engines.Select(e => Median(e).ToString("0.000", CultureInfo.InvariantCulture)))} | {ratio:0.00} | {1 / ratio:0.00}x | {gflops:0.0} | {100 * gflops / (peak * group.Key.Threads):0}% |");
        }

        var scaling = results.Where(r => r.Engine == sparse).GroupBy(r => (r.Model, r.Sparsity))
            .Where(g => g.Any(r => r.Threads == 1) && g.Any(r => r.Threads == 2)).ToList();
        if (scaling.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("Thread scaling of the sparse engine (time with 1 thread / time with 2 threads):");
            md.AppendLine();
            md.AppendLine("| model | sparsity | 1 thread (ms) | 2 threads (ms) | scaling |");
            md.AppendLine("|---|---:|---:|---:|---:|");
            foreach (var g in scaling.OrderBy(g => g.Key.Model).ThenBy(g => g.Key.Sparsity))
            {
                double one = g.First(r => r.Threads == 1).MedianMs, two = g.First(r => r.Threads == 2).MedianMs;
                md.AppendLine(CultureInfo.InvariantCulture, $"| {g.Key.Model} | {g.Key.Sparsity * 100:0}% | {one:0.000} | {two:0.000} | {one / two:0.00}x |");
            }
        }
        md.AppendLine();
        md.AppendLine($"The machine's own two-thread scaling (FMAs in registers, min / median / max of 9): {probe.Before} before the run, {probe.After} after it.");
        return md.ToString();
    }

    private static string Isa() =>
        Vector512.IsHardwareAccelerated ? "AVX-512 (Vector512)" :
        Vector256.IsHardwareAccelerated ? "AVX2 (Vector256)" :
        Vector128.IsHardwareAccelerated ? "128-bit (SSE/NEON)" : "scalar";
}
