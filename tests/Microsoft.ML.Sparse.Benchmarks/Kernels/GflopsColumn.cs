using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Microsoft.ML.Sparse.Benchmarks.Kernels;

/// <summary>A benchmark whose work in multiply-accumulates is known from its parameters.</summary>
public interface IMacCount
{
    /// <summary>Multiply-accumulates one invocation performs (dense count).</summary>
    long Macs { get; }
}

/// <summary>
/// "GFLOP/s": 2 x the multiply-accumulates <paramref name="macs"/> counts for a case, over its mean time or, with
/// <paramref name="fastest"/>, over its fastest iteration (useful on a shared machine).
/// </summary>
public sealed class GflopsColumn(Func<BenchmarkCase, double> macs, bool fastest = false) : IColumn
{
    /// <summary>Multiply-accumulates of a benchmark implementing <see cref="IMacCount"/>, recreated with the case's parameters.</summary>
    public static double FromMacCount(BenchmarkCase benchmarkCase)
    {
        var instance = (IMacCount)Activator.CreateInstance(benchmarkCase.Descriptor.Type)!;
        foreach (var parameter in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(parameter.Name)?.SetValue(instance, parameter.Value);
        return instance.Macs;
    }

    public string Id => nameof(GflopsColumn) + (fastest ? "Best" : "Mean");
    public string ColumnName => fastest ? "GFLOP/s best" : "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => $"2 x multiply-accumulates / {(fastest ? "fastest iteration" : "mean time")}, in 1e9 per second";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var statistics = summary[benchmarkCase]?.ResultStatistics;
        double? nanoseconds = fastest ? statistics?.Min : statistics?.Mean;
        if (nanoseconds is not > 0) return "-";
        return (2.0 * macs(benchmarkCase) / nanoseconds.Value).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
