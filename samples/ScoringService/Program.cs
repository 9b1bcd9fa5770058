using System.Globalization;

namespace ScoringService;

/// <summary>
/// dotnet run -c Release --project samples/ScoringService [-- --scorer sparse|onnx] [--port 5117] [--model file.onnx]
/// [--labels file] [--sparsity 0.9] [--workers N] [--queue 64] [--plain-logs] [--log-level Warning]
/// </summary>
public static class Program
{
    public const string Usage =
        "usage: ScoringService [--scorer sparse|onnx] [--port 5117] [--model file.onnx] [--labels file|folder] [--sparsity 0.9]\n" +
        "                      [--workers N] [--queue 64] [--max-body-bytes 4194304] [--max-image-side 4096] [--top 5] [--plain-logs] [--log-level Information]";

    public static async Task<int> Main(string[] args)
    {
        ScoringServiceOptions options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n{Usage}");
            return 2;
        }
        if (options is null) return 0;

        await using var app = ScoringApp.Create(options);
        await app.StartAsync();
        // One plain line for scripts and the load generator, whatever the log format.
        Console.WriteLine($"ScoringService listening on {app.Address}");
        await app.WaitForShutdownAsync();
        return 0;
    }

    /// <summary>The command line as options (null for --help).</summary>
    public static ScoringServiceOptions Parse(string[] args)
    {
        var options = new ScoringServiceOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Int() => int.TryParse(Value(), CultureInfo.InvariantCulture, out int v) && v >= 0 ? v : throw new ArgumentException($"{args[i - 1]} takes a non-negative integer, got '{args[i]}'.");
            switch (args[i])
            {
                case "--scorer":
                    options.Scorer = Value().ToLowerInvariant() switch
                    {
                        "sparse" => ScorerKind.Sparse,
                        "onnx" or "onnxruntime" => ScorerKind.OnnxRuntime,
                        var other => throw new ArgumentException($"--scorer takes sparse or onnx, got '{other}'."),
                    };
                    break;
                case "--port": options.Port = Int(); break;
                case "--model": options.Model = Value(); break;
                case "--labels": options.Labels = Value(); break;
                case "--sparsity":
                    options.Sparsity = float.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out float s) && s is >= 0f and < 1f
                        ? s : throw new ArgumentException($"--sparsity takes a fraction in [0, 1), got '{args[i]}'.");
                    break;
                case "--workers": options.Workers = Math.Max(1, Int()); break;
                case "--queue": options.QueueLimit = Int(); break;
                case "--max-body-bytes": options.MaxBodyBytes = Int(); break;
                case "--max-image-side": options.MaxImageSide = Int(); break;
                case "--top": options.TopK = Math.Max(1, Int()); break;
                case "--plain-logs": options.JsonLogs = false; break;
                case "--log-level":
                    options.LogLevel = Enum.TryParse(Value(), ignoreCase: true, out LogLevel level) ? level : throw new ArgumentException($"--log-level takes a LogLevel name, got '{args[i]}'.");
                    break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return null!;
                default: throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }
        }
        return options;
    }
}
