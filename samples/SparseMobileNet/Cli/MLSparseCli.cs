using System.CommandLine;
using System.CommandLine.Invocation;
using Microsoft.ML.Sparse;
using SparseMobileNet.Commands;

namespace SparseMobileNet;

/// <summary>The command tree, and how a command line becomes an exit code.</summary>
internal static class MLSparseCli
{
    /// <summary>Exit codes: the command did its work; it failed on its inputs (unreadable model, missing image...); the command line was wrong.</summary>
    public const int Success = 0, Failure = 1, UsageError = 2;

    /// <summary>Turns progress display off even on a terminal (it is always off when standard error is redirected).</summary>
    public static readonly Option<bool> NoProgress = new("--no-progress")
    {
        Description = "Do not draw progress on standard error (never drawn when it is redirected)",
        Recursive = true,
    };

    /// <summary>The commands, writing where <paramref name="context"/> says.</summary>
    public static RootCommand Create(CommandContext context)
    {
        var root = new RootCommand(
            "mlsparse: the Microsoft.ML.Sparse engine on ONNX MobileNets, side by side with ONNX Runtime. " +
            "Without a command it runs classify on the default model and photos.");
        root.Options.Add(NoProgress);
        root.Subcommands.Add(ClassifyCommand.Create(context));
        root.Subcommands.Add(PruneCommand.Create(context));
        root.Subcommands.Add(InspectCommand.Create(context));
        root.Subcommands.Add(BenchCommand.Create(context));
        return root;
    }

    /// <summary>
    /// Parses and runs <paramref name="args"/>, writing results to <paramref name="output"/> and messages to
    /// <paramref name="error"/>; <paramref name="terminal"/> says whether <paramref name="error"/> is a terminal (progress is drawn there).
    /// </summary>
    public static int Invoke(string[] args, TextWriter output, TextWriter error, bool terminal)
    {
        // No arguments: the README's first command, classify with the default model and photos.
        if (args.Length == 0) args = ["classify"];
        var parsed = Create(new CommandContext(output, error, terminal)).Parse(args);
        if (parsed.Action is ParseErrorAction)
        {
            foreach (var problem in parsed.Errors) error.WriteLine($"mlsparse: {problem.Message}");
            string command = parsed.CommandResult.Command is RootCommand ? "mlsparse" : $"mlsparse {parsed.CommandResult.Command.Name}";
            error.WriteLine($"See '{command} --help'.");
            return UsageError;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>
    /// Sets <paramref name="command"/>'s action to <paramref name="run"/>; the errors a user's inputs cause become a
    /// one-line message naming the command, and exit code 1.
    /// </summary>
    public static void SetHandler(Command command, CommandContext context, Func<ParseResult, int> run) => command.SetAction(parsed =>
    {
        try
        {
            return run(parsed);
        }
        catch (Exception e) when (e is OnnxModelException or IOException or UnauthorizedAccessException or ArgumentException
            or InvalidDataException or NotSupportedException or InvalidOperationException)
        {
            context.Error.WriteLine($"mlsparse {command.Name}: {e.Message}");
            return Failure;
        }
    });
}

/// <summary>Where commands write: results to <see cref="Output"/>, messages and progress to <see cref="Error"/>.</summary>
internal sealed record CommandContext(TextWriter Output, TextWriter Error, bool Terminal)
{
    /// <summary>
    /// Progress of <paramref name="total"/> steps (0: unknown, elapsed time only), drawn only on a terminal and
    /// without --no-progress.
    /// </summary>
    public ProgressDisplay Progress(ParseResult parsed, string label, int total = 0) =>
        new(Error, Terminal && !parsed.GetValue(MLSparseCli.NoProgress), label, total);
}
