using System.Diagnostics;
using System.Globalization;

namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>
/// `layers MODEL SPARSITY`: where one single-threaded inference of a real MobileNet (pruned as in the end-to-end
/// benchmark) spends its time. Each layer runs alone, many times, over the buffers a full inference filled; the table
/// gives the fastest run (the machine may be shared) and effective GFLOP/s (2 x executed MACs / time), then the totals by
/// kernel and plane size. Layers alone find their weights and inputs in cache, so the sum is below a whole inference.
/// </summary>
internal static class LayerProfile
{
    private const int Rounds = 40, RunsPerRound = 5;

    public static unsafe int Run(string[] args)
    {
        if (args.Length != 2 || !double.TryParse(args[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double sparsity))
        {
            Console.Error.WriteLine("usage: layers MODEL SPARSITY   (e.g. layers mobilenet_v1_1.0_224 0.9)");
            return 2;
        }
        var model = SparseModel.Load(BenchmarkModels.Get(args[0], sparsity), new SparseModelOptions { Threads = 1 });
        SparseNetwork network = model.Network;
        using SparseWorkspace workspace = model.CreateWorkspace();
        float[] input = BenchmarkModels.Input(model.InputLength), output = new float[model.OutputLength];
        TieredJit.WarmUp(() => model.Run(input, output, workspace));

        Console.WriteLine($"{args[0]} at {sparsity:P0}, 1 thread, {network.Layers[0].Kernel.Split('(')[^1].TrimEnd(')')}");
        Console.WriteLine($"{"layer",-44} {"kernel",-44} {"shape",-22} {"us",8} {"GFLOP/s",8}");
        var byKind = new Dictionary<string, double>();
        double total = 0;
        fixed (float* inputPointer = input, outputPointer = output)
        {
            for (int l = 0; l < network.PlannedLayers.Length; l++)
            {
                for (int i = 0; i < 20; i++) workspace.RunLayerAlone(l, inputPointer, outputPointer);
                double best = double.MaxValue;
                for (int round = 0; round < Rounds; round++)
                {
                    long start = Stopwatch.GetTimestamp();
                    for (int i = 0; i < RunsPerRound; i++) workspace.RunLayerAlone(l, inputPointer, outputPointer);
                    best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalMilliseconds * 1000 / RunsPerRound);
                }
                LayerInfo layer = network.Layers[l];
                string kernel = layer.Kernel[..layer.Kernel.LastIndexOf(" (", StringComparison.Ordinal)];
                string shape = $"{layer.Input.Channels}->{layer.Output.Channels}@{layer.Output.Height}x{layer.Output.Width}";
                Console.WriteLine($"{Shorten(layer.Name, 44),-44} {Shorten(kernel, 44),-44} {shape,-22} {best,8:F1} {2.0 * layer.ExecutedMacs / best / 1e3,8:F1}");
                string key = $"{kernel} @{layer.Output.Height}x{layer.Output.Width}";
                byKind[key] = byKind.GetValueOrDefault(key) + best;
                total += best;
            }
        }
        Console.WriteLine($"sum of layers: {total / 1000:F3} ms");
        foreach (var (kind, micros) in byKind.OrderByDescending(entry => entry.Value))
            Console.WriteLine($"  {kind,-60} {micros / 1000,7:F3} ms {micros / total,6:P0}");
        return 0;
    }

    private static string Shorten(string text, int length) => text.Length <= length ? text : "..." + text[^(length - 3)..];
}
