using System.Diagnostics;
using System.Globalization;

namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>
/// `layers MODEL SPARSITY`: where one single-threaded inference of a real MobileNet (pruned as in the end-to-end
/// benchmark) spends its time. Each layer runs alone, many times, over the buffers a full inference filled; the table
/// gives the fastest run (the machine may be shared) and effective GFLOP/s (2 x executed MACs / time), then the totals by
/// kernel and plane size. Layers alone find their weights and inputs in cache, so the sum is below a whole inference.
/// `layers MODEL SPARSITY --in-inference [THREADS]` instead times each layer inside whole inferences, with one thread and
/// with THREADS (default 2) side by side: what each layer costs where its data really is, and how it scales.
/// </summary>
internal static class LayerProfile
{
    private const int Rounds = 40, RunsPerRound = 5;

    /// <summary>In-inference mode: rounds alternate the two thread counts; each layer keeps its fastest round.</summary>
    private const int InferenceRounds = 30, InferencesPerRound = 10;

    public static unsafe int Run(string[] args)
    {
        int threads = 0;
        bool inInference = args.Length >= 3 && args[2] == "--in-inference" &&
            (args.Length == 3 || (args.Length == 4 && int.TryParse(args[3], out threads) && threads >= 2));
        if (!(args.Length == 2 || inInference) || !double.TryParse(args[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double sparsity))
        {
            Console.Error.WriteLine("usage: layers MODEL SPARSITY [--in-inference [THREADS]]   (e.g. layers mobilenet_v2_1.0_224 0.9 --in-inference)");
            return 2;
        }
        if (inInference) return RunInInference(args[0], sparsity, threads == 0 ? 2 : threads);
        var model = SparseModel.Load(BenchmarkModels.Get(args[0], sparsity), new SparseModelOptions { Threads = 1 });
        SparseNetwork network = model.Network;
        using SparseWorkspace workspace = model.CreateWorkspace();
        float[] input = BenchmarkModels.Input(model.InputLength), output = new float[model.OutputLength];
        model.Run(input, output, workspace); // the load's warm-up compiled the kernels; this touches the caches once

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

    /// <summary>
    /// Per-layer time inside whole inferences (the caller's clock from the end of one layer to the end of the next, waits
    /// for the other threads included), one thread against <paramref name="threads"/>. The two plans can differ (1x1 +
    /// depthwise pairs run as one layer only with several threads), so one-thread layers are summed up to the same output.
    /// </summary>
    private static int RunInInference(string modelName, double sparsity, int threads)
    {
        string path = BenchmarkModels.Get(modelName, sparsity);
        var one = new Profiled(SparseModel.Load(path, new SparseModelOptions { Threads = 1 }));
        var many = new Profiled(SparseModel.Load(path, new SparseModelOptions { Threads = threads }));
        try
        {
            for (int round = 0; round < InferenceRounds; round++)
            {
                one.Round();
                many.Round();
            }
            PlannedLayer[] oneLayers = one.Model.Network.PlannedLayers, manyLayers = many.Model.Network.PlannedLayers;
            Console.WriteLine($"{modelName} at {sparsity:P0}, per layer inside whole inferences, fastest of {InferenceRounds} rounds of {InferencesPerRound} (us)");
            Console.WriteLine($"{"layer",-44} {"kernel",-40} {"shape",-22} {"1 thread",9} {threads + " threads",9} {"scaling",8}");
            var oneIndex = new Dictionary<int, int>();
            for (int k = 0; k < oneLayers.Length; k++) oneIndex[oneLayers[k].Output.Id] = k;
            int j = 0;
            for (int i = 0; i < manyLayers.Length; i++)
            {
                PlannedLayer layer = manyLayers[i];
                string shape = $"{layer.Inputs[0].Channels}->{layer.Output.Channels}@{layer.Output.Height}x{layer.Output.Width}";
                string name = $"{Shorten(layer.Name, 44),-44} {Shorten(layer.KernelName, 40),-40} {shape,-22}";
                // A tensor only the multi-thread plan has (partial sums), or one the one-thread plan made earlier in another order
                // (folded squeeze-and-excitation scales): its one-thread time is counted where the plans meet again.
                if (!oneIndex.TryGetValue(layer.Output.Id, out int match) || match < j)
                {
                    Console.WriteLine($"{name} {"",9} {many.Best[i],9:F1}");
                    continue;
                }
                double single = 0, multi = many.Best[i];
                for (; j <= match; j++) single += one.Best[j];
                for (int k = i - 1; k >= 0 && !oneIndex.ContainsKey(manyLayers[k].Output.Id); k--) multi += many.Best[k];
                Console.WriteLine($"{name} {single,9:F1} {many.Best[i],9:F1} {single / multi,7:F2}x");
            }
            Console.WriteLine($"whole inference (fastest round): 1 thread {one.BestInference / 1000:F3} ms, {threads} threads {many.BestInference / 1000:F3} ms, scaling {one.BestInference / many.BestInference:F2}x");
            return 0;
        }
        finally
        {
            one.Dispose();
            many.Dispose();
        }
    }

    /// <summary>One model and workspace timed round by round, keeping each layer's and the whole inference's fastest round.</summary>
    private sealed class Profiled : IDisposable
    {
        private readonly SparseWorkspace _workspace;
        private readonly float[] _input, _output;
        private readonly long[] _ticks;

        public Profiled(SparseModel model)
        {
            Model = model;
            _workspace = model.CreateWorkspace();
            _input = BenchmarkModels.Input(model.InputLength);
            _output = new float[model.OutputLength];
            _ticks = new long[model.Network.PlannedLayers.Length];
            Best = Enumerable.Repeat(double.MaxValue, _ticks.Length).ToArray();
            Model.Run(_input, _output, _workspace);
        }

        public SparseModel Model { get; }

        /// <summary>Microseconds per layer, fastest round.</summary>
        public double[] Best { get; }

        public double BestInference { get; private set; } = double.MaxValue;

        public void Round()
        {
            Array.Clear(_ticks);
            _workspace.LayerTicks = _ticks;
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < InferencesPerRound; i++) Model.Run(_input, _output, _workspace);
            BestInference = Math.Min(BestInference, Stopwatch.GetElapsedTime(start).TotalMicroseconds / InferencesPerRound);
            _workspace.LayerTicks = null;
            for (int l = 0; l < _ticks.Length; l++)
                Best[l] = Math.Min(Best[l], _ticks[l] * 1e6 / Stopwatch.Frequency / InferencesPerRound);
        }

        public void Dispose() => _workspace.Dispose();
    }

    private static string Shorten(string text, int length) => text.Length <= length ? text : "..." + text[^(length - 3)..];
}
