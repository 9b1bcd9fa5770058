using System.Globalization;

namespace Microsoft.ML.Sparse.Benchmarks.Charts;

/// <summary>
/// Reads the end-to-end benchmark CSV (columns: model, engine, threads, sparsity, median_ms) and draws latency vs
/// sparsity, one line per engine and model, for each thread count found.
/// Usage: Charts &lt;results.csv&gt; &lt;output.png&gt;
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: Charts <results.csv> <output.png>");
            return 2;
        }

        var rows = File.ReadLines(args[0]).Skip(1).Where(l => l.Length > 0).Select(Parse).ToList();
        int threads = rows.Min(r => r.Threads);
        var plot = new ScottPlot.Plot();
        foreach (var series in rows.Where(r => r.Threads == threads).GroupBy(r => (r.Model, r.Engine)).OrderBy(g => g.Key))
        {
            var points = series.OrderBy(r => r.Sparsity).ToArray();
            var line = plot.Add.Scatter(points.Select(p => p.Sparsity * 100).ToArray(), points.Select(p => p.MedianMs).ToArray());
            line.LegendText = $"{series.Key.Model} - {series.Key.Engine}";
            line.LinePattern = series.Key.Engine.StartsWith("ONNX", StringComparison.Ordinal) ? ScottPlot.LinePattern.Dashed : ScottPlot.LinePattern.Solid;
        }

        plot.Title($"Latency vs sparsity of 1x1 weights (batch 1, {threads} thread{(threads == 1 ? "" : "s")})");
        plot.XLabel("1x1 weights pruned (%)");
        plot.YLabel("median latency (ms)");
        plot.Axes.SetLimitsY(0, rows.Max(r => r.MedianMs) * 1.1);
        plot.ShowLegend(ScottPlot.Alignment.LowerLeft); // the low-latency, low-sparsity corner is empty
        plot.SavePng(args[1], 1000, 600);
        Console.WriteLine($"wrote {args[1]}");
        return 0;
    }

    private static (string Model, string Engine, int Threads, double Sparsity, double MedianMs) Parse(string line)
    {
        string[] f = line.Split(',');
        return (f[0], f[1], int.Parse(f[2], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture), double.Parse(f[4], CultureInfo.InvariantCulture));
    }
}
