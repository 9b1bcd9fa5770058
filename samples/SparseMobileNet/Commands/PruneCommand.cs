using System.Globalization;
using Microsoft.ML.Sparse;

namespace SparseMobileNet.Commands;

/// <summary><c>prune &lt;input.onnx&gt; &lt;output.onnx&gt; --sparsity 0.9 [--global] [--block 4] [--include-first] [--include-depthwise] [--keep-classifier]</c></summary>
internal static class PruneCommand
{
    public const string Usage =
        "usage: prune <input.onnx> <output.onnx> --sparsity <0..1> [--global] [--block 1|2|4|8] [--l1]\n" +
        "             [--include-first] [--include-depthwise] [--keep-classifier]\n" +
        "  One-shot magnitude pruning (no fine-tuning: expect an accuracy loss, see docs/pruning.md).";

    public static int Run(string[] args)
    {
        var paths = new List<string>();
        var options = new PruningOptions();
        bool sparsityGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--sparsity" when i + 1 < args.Length && float.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out float sparsity):
                    options.TargetSparsity = sparsity;
                    sparsityGiven = true;
                    i++;
                    break;
                case "--block" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int block):
                    options.BlockSize = block;
                    i++;
                    break;
                case "--global": options.Scope = PruningScope.Global; break;
                case "--l1": options.BlockNorm = BlockNorm.L1; break;
                case "--include-first": options.IncludeFirstConvolution = true; break;
                case "--include-depthwise": options.IncludeDepthwise = true; break;
                case "--keep-classifier": options.IncludeClassifier = false; break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return 0;
                default:
                    if (args[i].StartsWith('-')) return Fail($"unknown or incomplete option '{args[i]}'");
                    paths.Add(args[i]);
                    break;
            }
        }
        if (paths.Count != 2) return Fail("expected an input and an output path");
        if (!sparsityGiven) return Fail("--sparsity is required (e.g. --sparsity 0.9)");

        try
        {
            var report = OnnxPruner.Prune(paths[0], paths[1], options);
            Console.WriteLine(report);
            Console.WriteLine($"Wrote {paths[1]}");
            return 0;
        }
        catch (Exception e) when (e is OnnxModelException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"prune: {e.Message}");
            return 1;
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"prune: {message}\n{Usage}");
        return 2;
    }
}
