namespace SparseMobileNet;

/// <summary>
/// The mlsparse tool: <c>mlsparse [classify|prune|inspect|bench] [arguments]</c>; <c>mlsparse --help</c> lists the
/// commands, <c>mlsparse &lt;command&gt; --help</c> their arguments. With no arguments it classifies (README's first command).
/// </summary>
internal static class Program
{
    private static int Main(string[] args) => MLSparseCli.Invoke(args, Console.Out, Console.Error, ProgressDisplay.ConsoleShowsProgress());
}
