using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Sparse.Samples;
using Microsoft.ML.Transforms.Onnx;
using static Microsoft.ML.Sparse.Benchmarks.MLNet.PrunedBenchmarkModel;

namespace Microsoft.ML.Sparse.Benchmarks.Startup;

/// <summary>
/// One fresh process of the start-up benchmark: `startup-child CASE MODEL INPUT OUTPUT INPUTLENGTH OUTPUTLENGTH PREDICTIONS STEADY`.
/// Loads the model the way CASE says (one thread), times its first predictions and prints <see cref="StartupReport"/>'s lines.
/// The raw SparseModel case is the AOT sample itself, run under the JIT.
/// </summary>
internal static class StartupChild
{
    public static int Run(string[] args)
    {
        StartupReport.Begin();
        string kind = args[0], path = args[1], inputName = args[2], outputName = args[3];
        int inputLength = int.Parse(args[4]), outputLength = int.Parse(args[5]), predictions = int.Parse(args[6]), steady = int.Parse(args[7]);
        float[] input = StartupReport.DeterministicImage(inputLength);
        switch (kind)
        {
            case "ort": RunSession(path, inputName, outputName, input, outputLength, predictions, steady); break;
            case "mlnet-onnx" or "mlnet-sparse": RunPredictionEngine(kind == "mlnet-sparse", path, inputName, outputName, input, outputLength, predictions, steady); break;
            case "phases": RunPhases(path, input, outputLength); break;
            default: throw new ArgumentException($"Unknown start-up case '{kind}'.");
        }
        return 0;
    }

    private static void RunSession(string path, string inputName, string outputName, float[] input, int outputLength, int predictions, int steady)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 1, InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(path, options);
        using var runOptions = new RunOptions();
        var output = new float[outputLength];
        long[] outputShape = session.OutputMetadata[outputName].Dimensions.Select(d => d < 0 ? 1L : d).ToArray();
        long[] inputShape = session.InputMetadata[inputName].Dimensions.Select(d => d < 0 ? 1L : d).ToArray();
        using var ortInput = OrtValue.CreateTensorValueFromMemory(input, inputShape);
        using var ortOutput = OrtValue.CreateTensorValueFromMemory(output, outputShape);
        OrtValue[] inputs = [ortInput], outputs = [ortOutput];
        string[] inputNames = [inputName], outputNames = [outputName];
        StartupReport.Loaded();
        StartupReport.TimePredictions(() => session.Run(runOptions, inputNames, inputs, outputNames, outputs), predictions, steady);
        StartupReport.Finish("onnxruntime", output);
    }

    /// <summary>
    /// SparseModel.Load's stages timed one by one in a fresh JIT process (so each includes compiling its code): reading and
    /// parsing the protobuf, lowering and fusing the graph, planning (weights into kernel formats, buffers), and the warm-up
    /// inference; then the first prediction. Where load time goes, and what ReadyToRun or AOT would save.
    /// </summary>
    private static void RunPhases(string path, float[] input, int outputLength)
    {
        long start = Stopwatch.GetTimestamp();
        var file = OnnxModelFile.Read(path, splitWeights: true); // as SparseModel.Load reads it
        Print("read_ms", ref start);
        var graph = SparseModel.Lower(file, inputShape: null, CancellationToken.None);
        Print("lower_ms", ref start);
        using var network = NetworkEmitter.Emit(graph, new SparseNetworkOptions { Threads = 1 }, CancellationToken.None);
        Print("plan_ms", ref start);
        network.WarmUp();
        Print("warmup_ms", ref start);
        using var workspace = network.CreateWorkspace();
        var output = new float[outputLength];
        StartupReport.Loaded();
        StartupReport.TimePredictions(() => network.Run(input, output, workspace), 1, 0);
        StartupReport.Finish("phases", output);
    }

    private static void Print(string key, ref long start)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{key}={Stopwatch.GetElapsedTime(start).TotalMilliseconds:0.###}"));
        start = Stopwatch.GetTimestamp();
    }

    private static void RunPredictionEngine(bool sparse, string path, string inputName, string outputName, float[] input, int outputLength,
        int predictions, int steady)
    {
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(PixelInput));
        schema[0].ColumnName = inputName;
        schema[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, input.Length);
        var outputSchema = SchemaDefinition.Create(typeof(ScoreOutput));
        outputSchema[0].ColumnName = outputName;
        outputSchema[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, outputLength);
        var empty = ml.Data.LoadFromEnumerable(Array.Empty<PixelInput>(), schema);
        ITransformer model = sparse
            ? ml.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions
            {
                ModelFile = path, InputColumnName = inputName, OutputColumnName = outputName, ThreadsPerRow = 1,
            }).Fit(empty)
            : ml.Transforms.ApplyOnnxModel(new OnnxOptions
            {
                ModelFile = path, InputColumns = [inputName], OutputColumns = [outputName], IntraOpNumThreads = 1, InterOpNumThreads = 1,
            }).Fit(empty);
        using var engine = ml.Model.CreatePredictionEngine<PixelInput, ScoreOutput>(model, inputSchemaDefinition: schema, outputSchemaDefinition: outputSchema);
        var row = new PixelInput { Pixels = input };
        var score = new ScoreOutput();
        StartupReport.Loaded();
        StartupReport.TimePredictions(() => engine.Predict(row, ref score), predictions, steady);
        StartupReport.Finish(sparse ? "ScoreSparseMobileNet" : "ApplyOnnxModel", score.Scores);
    }
}
