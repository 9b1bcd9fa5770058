using Microsoft.ML.Sparse;
using SharpFuzz;

namespace Microsoft.ML.Sparse.Fuzz;

/// <summary>
/// Coverage-guided fuzzing of the ONNX loader with SharpFuzz and AFL++ (see fuzz.sh and docs/reliability.md).
/// <list type="bullet">
/// <item><c>(no arguments)</c>: the AFL target; reads one input from AFL and runs <see cref="LoaderTarget.Run"/>.</item>
/// <item><c>corpus &lt;folder&gt;</c>: writes the seed corpus (<see cref="SeedCorpus"/>).</item>
/// <item><c>repro &lt;file|folder&gt;...</c>: runs the target on saved inputs (AFL's crashes/hangs) and prints what each does.</item>
/// </list>
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case null:
                Fuzzer.OutOfProcess.Run(stream => LoaderTarget.Run(stream));
                return 0;
            case "corpus" when args.Length == 2:
                foreach (var (name, bytes) in SeedCorpus.Create())
                    File.WriteAllBytes(Path.Combine(Directory.CreateDirectory(args[1]).FullName, name), bytes);
                Console.WriteLine($"Wrote {SeedCorpus.Create().Count()} seeds to {args[1]}");
                return 0;
            case "repro" when args.Length >= 2:
                return Repro(args[1..]);
            default:
                Console.Error.WriteLine("usage: Microsoft.ML.Sparse.Fuzz [corpus <folder> | repro <file|folder>... [--limit-ms N]]   (no arguments: the AFL target)");
                return 2;
        }
    }

    /// <summary>
    /// Each file through the target in this process: its outcome, or the exception that AFL saw as a crash; with
    /// <c>--limit-ms N</c>, a case slower than N ms also fails (to tell a real hang from a busy machine).
    /// </summary>
    private static int Repro(string[] paths)
    {
        long limitMs = long.MaxValue;
        int limitAt = Array.IndexOf(paths, "--limit-ms");
        if (limitAt >= 0 && limitAt + 1 < paths.Length && long.TryParse(paths[limitAt + 1], out long limit))
        {
            limitMs = limit;
            paths = [.. paths[..limitAt], .. paths[(limitAt + 2)..]];
        }
        int failures = 0;
        var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p).Where(f => !f.EndsWith("README.txt", StringComparison.Ordinal)) : [p]).Order(StringComparer.Ordinal);
        foreach (string file in files)
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                using var stream = File.OpenRead(file);
                string outcome = LoaderTarget.Run(stream);
                bool slow = started.ElapsedMilliseconds > limitMs;
                if (slow) failures++;
                Console.WriteLine($"{file}: {outcome} ({started.ElapsedMilliseconds} ms{(slow ? $", over the {limitMs} ms limit" : "")})");
            }
            catch (Exception e)
            {
                failures++;
                Console.WriteLine($"{file}: CRASH after {started.ElapsedMilliseconds} ms: {e}");
            }
        }
        return failures == 0 ? 0 : 1;
    }
}
