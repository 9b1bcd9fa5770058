using System.Globalization;

namespace ScoringService.LoadTest;

internal sealed class LoadTestOptions
{
    public int[] Concurrency { get; private set; } = [1, 2, 4, 16];

    public double Seconds { get; private set; } = 20;

    public double WarmupSeconds { get; private set; } = 5;

    public string[] Scorers { get; private set; } = ["sparse", "onnx"];

    public int MemoryRequests { get; private set; } = 10_000;

    public int MemoryConcurrency { get; private set; } = 4;

    /// <summary>The scorers the memory run is made for (default: the sparse engine only, the one this project ships).</summary>
    public string[] MemoryScorers { get; private set; } = ["sparse"];

    public string? ImageFolder { get; private set; }

    public string? MarkdownFile { get; private set; }

    /// <summary>Passed on to the service (after <c>--</c>), e.g. --model, --sparsity, --workers.</summary>
    public string[] ServiceArguments { get; private set; } = [];

    public static LoadTestOptions Parse(string[] args)
    {
        var options = new LoadTestOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            double Number(double min, double max) => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= min && v <= max
                ? v : throw new ArgumentException($"{args[i - 1]} takes a number in [{min}, {max}], got '{args[i]}'.");
            switch (args[i])
            {
                case "--concurrency":
                    options.Concurrency = Value().Split(',').Select(c => int.TryParse(c, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= 256
                        ? n : throw new ArgumentException($"--concurrency takes a list of 1..256, got '{c}'.")).ToArray();
                    break;
                case "--seconds": options.Seconds = Number(0.1, 3600); break;
                case "--warmup-seconds": options.WarmupSeconds = Number(0, 600); break;
                case "--scorers":
                    options.Scorers = Value().Split(',');
                    if (options.Scorers.Any(s => s is not ("sparse" or "onnx"))) throw new ArgumentException("--scorers takes sparse and/or onnx.");
                    break;
                case "--memory-requests": options.MemoryRequests = (int)Number(0, 10_000_000); break;
                case "--memory-scorers": options.MemoryScorers = Value().Split(','); break;
                case "--memory-concurrency": options.MemoryConcurrency = (int)Number(1, 256); break;
                case "--images": options.ImageFolder = Value(); break;
                case "--markdown": options.MarkdownFile = Value(); break;
                case "--":
                    options.ServiceArguments = args[(i + 1)..];
                    return options;
                default: throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }
        }
        return options;
    }
}
