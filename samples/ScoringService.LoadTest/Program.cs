using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;

namespace ScoringService.LoadTest;

/// <summary>
/// Drives the scoring service at fixed concurrency levels for a fixed time, once per scorer (sparse, then
/// ApplyOnnxModel) in the same run, and reports requests/s and p50/p95/p99 latency; then sends a fixed number of
/// requests and samples the service's managed heap and RSS. Every loop is bounded (by time and by a request cap) and
/// all traffic goes to 127.0.0.1. The service runs as a child process of this program (<c>--serve</c>).
/// </summary>
internal static class Program
{
    private const string Usage =
        "usage: ScoringService.LoadTest [--concurrency 1,2,4,16] [--seconds 20] [--warmup-seconds 5] [--scorers sparse,onnx]\n" +
        "                               [--memory-requests 10000] [--memory-concurrency 4]\n" +
        "                               [--memory-scorers sparse] [--images folder] [--markdown out.md] [-- service arguments]";

    private static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "--serve") return await ScoringService.Program.Main(args[1..]);
        LoadTestOptions options;
        try
        {
            options = LoadTestOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n{Usage}");
            return 2;
        }

        var images = LoadImages(options.ImageFolder);
        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"Load test {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} logical CPUs, {images.Count} images, {options.Seconds} s per level after a {options.WarmupSeconds} s warm-up");
        report.AppendLine();
        report.AppendLine("| scorer | clients | requests | errors | requests/s | p50 ms | p95 ms | p99 ms | p99/p50 | server scoring p50 ms |");
        report.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var memory = new StringBuilder();
        var throughput = new Dictionary<(string, int), double>();
        foreach (string scorer in options.Scorers)
        {
            await using var service = await ServiceProcess.StartAsync(["--scorer", scorer, "--port", "0", "--plain-logs", "--log-level", "Warning", .. options.ServiceArguments]);
            using var client = new HttpClient { BaseAddress = service.Address, Timeout = TimeSpan.FromSeconds(60) };
            Console.WriteLine($"{scorer}: service at {service.Address}, warming up");
            await RunAsync(client, images, 2, TimeSpan.FromSeconds(options.WarmupSeconds), int.MaxValue);
            foreach (int clients in options.Concurrency)
            {
                var result = await RunAsync(client, images, clients, TimeSpan.FromSeconds(options.Seconds), int.MaxValue);
                throughput[(scorer, clients)] = result.PerSecond;
                string line = $"| {scorer} | {clients} | {result.Latencies.Length} | {result.Errors} | {result.PerSecond:0.0} | {result.Percentile(50):0.0} | {result.Percentile(95):0.0} | {result.Percentile(99):0.0} | {result.Percentile(99) / result.Percentile(50):0.00} | {result.MedianScoreMs:0.0} |";
                Console.WriteLine(line);
                report.AppendLine(line);
            }
            if (options.MemoryRequests > 0 && options.MemoryScorers.Contains(scorer)) memory.Append(await MemoryRunAsync(client, images, scorer, options));
        }
        if (options.Scorers.Length == 2)
        {
            report.AppendLine();
            report.AppendLine($"Throughput {options.Scorers[0]} / {options.Scorers[1]}: " + string.Join(", ",
                options.Concurrency.Select(c => $"{c} client{(c == 1 ? "" : "s")} {throughput[(options.Scorers[0], c)] / throughput[(options.Scorers[1], c)]:0.00}x")));
        }
        if (memory.Length > 0)
        {
            report.AppendLine();
            report.AppendLine("| scorer | requests sent | errors | GC heap MiB | RSS MiB | gen2 GCs |");
            report.AppendLine("|---|---:|---:|---:|---:|---:|");
            report.Append(memory);
        }
        Console.WriteLine();
        Console.WriteLine(report);
        if (options.MarkdownFile is not null) await File.WriteAllTextAsync(options.MarkdownFile, report.ToString());
        return 0;
    }

    /// <summary><paramref name="clients"/> loops, each sending one request at a time until the time or the request cap runs out.</summary>
    private static async Task<RunResult> RunAsync(HttpClient client, IReadOnlyList<(byte[] Bytes, string Type)> images, int clients, TimeSpan duration, int maxRequests)
    {
        var latencies = new List<double>[clients];
        var scoring = new List<double>();
        int errors = 0, sent = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            var mine = latencies[c] = [];
            for (int i = c; clock.Elapsed < duration && Interlocked.Increment(ref sent) <= maxRequests; i += clients)
            {
                var (bytes, type) = images[i % images.Count];
                using var content = new ByteArrayContent(bytes);
                content.Headers.ContentType = new MediaTypeHeaderValue(type);
                long start = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.PostAsync("/classify", content);
                    if (!response.IsSuccessStatusCode)
                    {
                        await response.Content.ReadAsByteArrayAsync();
                        Interlocked.Increment(ref errors);
                    }
                    else
                    {
                        var answer = await response.Content.ReadFromJsonAsync<ClassifyResponse>();
                        lock (scoring) scoring.Add(answer!.Latency.ScoreMs);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
                mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return new RunResult(all, errors, all.Length / seconds, scoring.Order().ElementAtOrDefault(scoring.Count / 2));
    }

    /// <summary>A fixed number of requests in ten slices; the service's heap and RSS after each (from /healthz).</summary>
    private static async Task<string> MemoryRunAsync(HttpClient client, IReadOnlyList<(byte[] Bytes, string Type)> images, string scorer, LoadTestOptions options)
    {
        var rows = new StringBuilder();
        int sent = 0, errors = 0;
        var health = await client.GetFromJsonAsync<HealthResponse>("/healthz");
        rows.AppendLine(CultureInfo.InvariantCulture, $"| {scorer} | 0 | 0 | {health!.GcHeapBytes / 1048576.0:0.0} | {health.RssBytes / 1048576.0:0.0} | {health.Gen2Collections} |");
        int slice = Math.Max(1, options.MemoryRequests / 10);
        while (sent < options.MemoryRequests)
        {
            int count = Math.Min(slice, options.MemoryRequests - sent);
            var result = await RunAsync(client, images, options.MemoryConcurrency, TimeSpan.FromHours(1), count);
            sent += result.Latencies.Length;
            errors += result.Errors;
            health = await client.GetFromJsonAsync<HealthResponse>("/healthz");
            string line = $"| {scorer} | {sent} | {errors} | {health!.GcHeapBytes / 1048576.0:0.0} | {health.RssBytes / 1048576.0:0.0} | {health.Gen2Collections} |";
            Console.WriteLine(line);
            rows.AppendLine(line);
        }
        return rows.ToString();
    }

    /// <summary>The photos of ../shared/images (or of the folder given), else three generated PNGs.</summary>
    private static List<(byte[] Bytes, string Type)> LoadImages(string? folder)
    {
        folder ??= FindSharedImages();
        if (folder is null)
        {
            Console.WriteLine("No ../shared/images: sending generated images.");
            return Enumerable.Range(0, 3).Select(seed => (GeneratedImage.Png(256, 256, seed), "image/png")).ToList();
        }
        return Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal)
            .Select(f => (Path: f, Type: Path.GetExtension(f).ToLowerInvariant() switch { ".jpg" or ".jpeg" => "image/jpeg", ".png" => "image/png", ".bmp" => "image/bmp", _ => "" }))
            .Where(f => f.Type.Length > 0)
            .Select(f => (File.ReadAllBytes(f.Path), f.Type)).ToList();
    }

    private static string? FindSharedImages()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLSparse.sln")))
            {
                string images = Path.Combine(dir.FullName, "..", "shared", "images");
                return Directory.Exists(images) ? images : null;
            }
        return null;
    }

    /// <summary>Client-side latencies (sorted), failed requests, throughput, and the median of the server's own scoring time (the model alone).</summary>
    private sealed record RunResult(double[] Latencies, int Errors, double PerSecond, double MedianScoreMs)
    {
        /// <summary>Nearest-rank percentile of the sorted latencies.</summary>
        public double Percentile(double p) => Latencies.Length == 0 ? double.NaN : Latencies[Math.Clamp((int)Math.Ceiling(p / 100 * Latencies.Length) - 1, 0, Latencies.Length - 1)];
    }
}
