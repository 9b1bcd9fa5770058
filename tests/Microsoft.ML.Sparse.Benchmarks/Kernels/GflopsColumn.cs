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

/// <summary>Adds "GFLOP/s" (2 x MACs / mean time) for benchmarks implementing <see cref="IMacCount"/>.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2 x dense multiply-accumulates per second / 1e9";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (meanNs is not > 0) return "-";
        // Recreate the benchmark with this case's parameters to ask for its MAC count.
        var instance = (IMacCount)Activator.CreateInstance(benchmarkCase.Descriptor.Type)!;
        foreach (var parameter in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(parameter.Name)?.SetValue(instance, parameter.Value);
        return (2.0 * instance.Macs / meanNs.Value).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
