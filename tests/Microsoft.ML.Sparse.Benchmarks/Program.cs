using BenchmarkDotNet.Running;
using Microsoft.ML.Sparse.Benchmarks.EndToEnd;

namespace Microsoft.ML.Sparse.Benchmarks;

/// <summary>
/// `e2e [--quick | --targets] [--model NAME]` runs the end-to-end comparison and writes docs/benchmarks/; `startup [--runs N]
/// [--model NAME]` times load and first predictions in fresh processes (docs/benchmarks/startup-results.md); `layers MODEL SPARSITY [--in-inference]` prints
/// where one inference spends its time, layer by layer; `pruning [...]` measures top-1 agreement of magnitude vs
/// calibrated pruning (docs/pruning.md); anything else goes to BenchmarkDotNet's switcher over every
/// benchmark class here (e.g. --filter '*Pointwise*').
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "startup-child") return Startup.StartupChild.Run(args[1..]);
        if (args.Length > 0 && args[0] == "startup") return Startup.StartupRunner.Run(args[1..]);
        if (args.Length > 0 && args[0] == "e2e") return EndToEndRunner.Run(args[1..]);
        if (args.Length > 0 && args[0] == "layers") return LayerProfile.Run(args[1..]);
        if (args.Length > 0 && args[0] == "pruning") return Pruning.PruningAgreement.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
