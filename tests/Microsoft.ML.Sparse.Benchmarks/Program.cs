using BenchmarkDotNet.Running;

namespace Microsoft.ML.Sparse.Benchmarks;

/// <summary>Entry point: BenchmarkDotNet's switcher over every benchmark class in this assembly (pass --filter '*Name*').</summary>
internal static class Program
{
    private static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
