using System.Globalization;
using Microsoft.ML.Sparse;

namespace SparseMobileNet.Commands;

/// <summary><c>inspect &lt;model.onnx&gt; [--threads N]</c>: imports the model into the sparse engine and prints its layer plan.</summary>
internal static class InspectCommand
{
    public const string Usage = "usage: inspect <model.onnx> [--threads N]";

    public static int Run(string[] args)
    {
        string? path = null;
        var options = new SparseModelOptions();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out int threads) && threads > 0)
            {
                options.Threads = threads;
                i++;
            }
            else if (args[i] is "-h" or "--help")
            {
                Console.WriteLine(Usage);
                return 0;
            }
            else if (!args[i].StartsWith('-') && path is null)
            {
                path = args[i];
            }
            else
            {
                Console.Error.WriteLine($"inspect: unexpected argument '{args[i]}'\n{Usage}");
                return 2;
            }
        }
        if (path is null)
        {
            Console.Error.WriteLine($"inspect: expected a model path\n{Usage}");
            return 2;
        }

        try
        {
            var model = SparseModel.Load(path, options);
            Console.WriteLine(model.Describe());
            return 0;
        }
        catch (Exception e) when (e is OnnxModelException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"inspect: {e.Message}");
            return 1;
        }
    }
}
