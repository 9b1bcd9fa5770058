using System.CommandLine;
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Sparse;

namespace SparseMobileNet.Commands;

/// <summary>
/// <c>mlsparse bench &lt;model.onnx&gt; [--threads 1] [--rounds 5] [--iterations 50]</c>: a quick latency check of one
/// image through ONNX Runtime and through the sparse engine, same file, same random input, in alternating rounds (so
/// both see the same machine load), with the largest difference between their outputs. For publishable figures use
/// the BenchmarkDotNet suite (tests/Microsoft.ML.Sparse.Benchmarks).
/// </summary>
internal sealed class BenchCommand
{
    private readonly Argument<FileInfo> _model = CommonOptions.ExistingModel("model", "The ONNX model (dense or pruned)");
    private readonly Option<int> _threads = CommonOptions.Threads(1, "Threads per inference, for both engines");
    private readonly Option<int> _rounds = new("--rounds") { Description = "Alternating timing rounds", DefaultValueFactory = _ => 5 };
    private readonly Option<int> _iterations = new("--iterations") { Description = "Inferences per engine per round", DefaultValueFactory = _ => 50 };

    private BenchCommand()
    {
        _rounds.Validators.Add(result => CommonOptions.AtLeast(result, 1));
        _iterations.Validators.Add(result => CommonOptions.AtLeast(result, 1));
    }

    public static Command Create(CommandContext context)
    {
        var bench = new BenchCommand();
        var command = new Command("bench", "Time one image through ONNX Runtime and the sparse engine side by side (a quick check, not a benchmark suite)")
        {
            bench._model, bench._threads, bench._rounds, bench._iterations,
        };
        MLSparseCli.SetHandler(command, context, parsed => bench.Run(parsed, context));
        return command;
    }

    private int Run(ParseResult parsed, CommandContext context)
    {
        string path = parsed.GetRequiredValue(_model).FullName;
        int threads = parsed.GetValue(_threads), rounds = parsed.GetValue(_rounds), iterations = parsed.GetValue(_iterations);
        using var model = SparseModel.Load(path, new SparseModelOptions { Threads = threads });
        using var workspace = model.CreateWorkspace();
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        using var session = new InferenceSession(path, sessionOptions);

        var random = new Random(1);
        float[] input = Enumerable.Range(0, model.InputLength).Select(_ => random.NextSingle() * 2f - 1f).ToArray();
        float[] ours = new float[model.OutputLength], theirs = new float[model.OutputLength];
        string inputName = session.InputMetadata.Keys.Single(), outputName = session.OutputMetadata.Keys.Single();
        long[] inputShape = [1, .. model.InputShape.Select(d => (long)d)];
        long[] outputShape = session.OutputMetadata[outputName].Dimensions.Select(d => d < 0 ? 1L : d).ToArray();
        if (outputShape.Aggregate(1L, (a, b) => a * b) != theirs.Length)
            throw new InvalidOperationException($"ONNX Runtime's output '{outputName}' [{string.Join(",", outputShape)}] does not hold the engine's {theirs.Length} values.");
        using var runOptions = new RunOptions();
        using var inputValue = OrtValue.CreateTensorValueFromMemory(input, inputShape);
        using var outputValue = OrtValue.CreateTensorValueFromMemory(theirs, outputShape);
        Action onnxRuntime = () => session.Run(runOptions, [inputName], [inputValue], [outputName], [outputValue]);
        Action sparse = () => model.Run(input, ours, workspace);

        context.Output.WriteLine($"Model {path}: input '{model.InputName}' [{string.Join(", ", model.InputShape)}], {threads} thread(s), {rounds} rounds of {iterations} inferences per engine");
        var times = new List<double>[] { [], [] };
        using (var progress = context.Progress(parsed, "Timing", total: 2 * (rounds + 1)))
        {
            // A first untimed round: JIT tiers, ONNX Runtime's first-run allocations, caches.
            foreach (var engine in new[] { onnxRuntime, sparse })
            {
                Time(engine, Math.Max(iterations, 20));
                progress.Advance("warm-up");
            }
            for (int round = 0; round < rounds; round++)
            {
                // Alternate which engine goes first, so neither always runs on the warmer (or busier) machine.
                foreach (int engine in round % 2 == 0 ? new[] { 0, 1 } : [1, 0])
                {
                    times[engine].Add(Time(engine == 0 ? onnxRuntime : sparse, iterations));
                    progress.Advance($"round {round + 1}");
                }
            }
        }

        double ortMedian = Statistics.Median(times[0]), sparseMedian = Statistics.Median(times[1]);
        context.Output.WriteLine($"  ONNX Runtime {OrtEnv.Instance().GetVersionString(),-10} median {ortMedian,8:0.000} ms   best {times[0].Min(),8:0.000} ms");
        context.Output.WriteLine($"  sparse engine         median {sparseMedian,8:0.000} ms   best {times[1].Min(),8:0.000} ms");
        context.Output.WriteLine($"  speed-up (median): {ortMedian / sparseMedian:0.00}x");
        float scale = theirs.Max(MathF.Abs), difference = 0f;
        for (int i = 0; i < ours.Length; i++) difference = MathF.Max(difference, MathF.Abs(ours[i] - theirs[i]));
        context.Output.WriteLine($"  max |sparse - ONNX Runtime| / max |ONNX Runtime| = {(scale > 0 ? difference / scale : difference):0.0e+0}");
        return MLSparseCli.Success;
    }

    /// <summary>Milliseconds per inference, averaged over <paramref name="iterations"/> back-to-back runs.</summary>
    private static double Time(Action run, int iterations)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < iterations; i++) run();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds / iterations;
    }
}
