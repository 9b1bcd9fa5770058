namespace SparseMobileNet;

/// <summary>
/// dotnet run -c Release --project samples/SparseMobileNet [classify|prune|inspect] [arguments]
/// Without a command it classifies (see <see cref="Commands.ClassifyCommand"/>).
/// </summary>
internal static class Program
{
    private static readonly Dictionary<string, Func<string[], int>> s_commands = new(StringComparer.OrdinalIgnoreCase)
    {
        ["classify"] = Commands.ClassifyCommand.Run,
        ["prune"] = Commands.PruneCommand.Run,
        ["inspect"] = Commands.InspectCommand.Run,
    };

    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine("Usage: SparseMobileNet [classify|prune|inspect] [arguments]   (default: classify)");
            Console.WriteLine("  usage: classify [imageFolder] [model.onnx] [--labels file] [--sparsity 0.9]");
            Console.WriteLine("  " + Commands.PruneCommand.Usage.Replace("\n", "\n  "));
            Console.WriteLine("  " + Commands.InspectCommand.Usage);
            return 0;
        }
        bool named = args.Length > 0 && s_commands.ContainsKey(args[0]);
        string command = named ? args[0] : "classify";
        try
        {
            return s_commands[command](named ? args[1..] : args);
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or NotSupportedException)
        {
            Console.Error.WriteLine($"{command}: {e.Message}");
            return 1;
        }
    }
}
