using BenchmarkDotNet.Attributes;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;
using static Microsoft.ML.Sparse.Benchmarks.MLNet.PrunedBenchmarkModel;

namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>
/// One image (batch 1) through a whole MobileNet: ONNX Runtime (raw InferenceSession and ML.NET's ApplyOnnxModel in a
/// PredictionEngine) against the sparse engine (raw SparseModel.Run and ScoreSparseMobileNet in a PredictionEngine),
/// on the same file pruned to each sparsity, with the same thread count. Ratios are against the raw ONNX Runtime session.
/// </summary>
[MemoryDiagnoser]
public class EndToEndBenchmarks
{
    /// <summary>Set by the runner: which models, sparsities and thread counts to measure.</summary>
    public static IReadOnlyList<string> Models { get; set; } =
    [
        "mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224", "torchvision_mobilenet_v3_small", "torchvision_mobilenet_v3_large",
        "torchvision_efficientnet_b0", "torchvision_mnasnet1_0",
    ];
    public static IReadOnlyList<double> Sparsities { get; set; } = [0, 0.5, 0.7, 0.8, 0.9, 0.95];
    public static IReadOnlyList<int> ThreadCounts { get; set; } = [1, 2];

    [ParamsSource(nameof(Models))] public string Model { get; set; } = "";
    [ParamsSource(nameof(Sparsities))] public double Sparsity { get; set; }
    [ParamsSource(nameof(ThreadCounts))] public int Threads { get; set; }

    private InferenceSession _session = null!;
    private RunOptions _runOptions = null!;
    private OrtValue _ortInput = null!, _ortOutput = null!;
    private OrtValue[] _ortInputs = null!, _ortOutputs = null!;
    private string[] _inputNames = null!, _outputNames = null!;
    private SparseModel _sparse = null!;
    private SparseWorkspace _workspace = null!;
    private float[] _input = null!, _output = null!;
    private PredictionEngine<PixelInput, ScoreOutput> _onnxEngine = null!, _sparseEngine = null!;
    private PixelInput _row = null!;
    private ScoreOutput _score = new();

    [GlobalSetup]
    public void Setup()
    {
        string path = BenchmarkModels.Get(Model, Sparsity);

        _sparse = SparseModel.Load(path, new SparseModelOptions { Threads = Threads });
        _workspace = _sparse.CreateWorkspace();
        _input = BenchmarkModels.Input(_sparse.InputLength);
        _output = new float[_sparse.OutputLength];

        var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = Threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        _session = new InferenceSession(path, sessionOptions);
        _runOptions = new RunOptions();
        _inputNames = [_sparse.InputName];
        _outputNames = [_sparse.OutputName];
        long[] inputShape = [1, .. _sparse.InputShape.Select(d => (long)d)];
        long[] outputShape = _session.OutputMetadata[_sparse.OutputName].Dimensions.Select(d => d < 0 ? 1L : d).ToArray();
        _ortInput = OrtValue.CreateTensorValueFromMemory(_input, inputShape);
        _ortOutput = OrtValue.CreateTensorValueFromMemory(new float[_sparse.OutputLength], outputShape);
        _ortInputs = [_ortInput];
        _ortOutputs = [_ortOutput];

        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(PixelInput));
        schema[0].ColumnName = _sparse.InputName;
        schema[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, _sparse.InputLength);
        var outputSchema = SchemaDefinition.Create(typeof(ScoreOutput));
        outputSchema[0].ColumnName = _sparse.OutputName;
        outputSchema[0].ColumnType = new VectorDataViewType(NumberDataViewType.Single, _sparse.OutputLength);
        var empty = ml.Data.LoadFromEnumerable(Array.Empty<PixelInput>(), schema);

        var onnx = ml.Transforms.ApplyOnnxModel(new OnnxOptions
        {
            ModelFile = path,
            InputColumns = [_sparse.InputName],
            OutputColumns = [_sparse.OutputName],
            IntraOpNumThreads = Threads,
            InterOpNumThreads = 1,
        }).Fit(empty);
        _onnxEngine = ml.Model.CreatePredictionEngine<PixelInput, ScoreOutput>(onnx, inputSchemaDefinition: schema, outputSchemaDefinition: outputSchema);

        var sparse = ml.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions
        {
            ModelFile = path,
            InputColumnName = _sparse.InputName,
            OutputColumnName = _sparse.OutputName,
            ThreadsPerRow = Threads,
        }).Fit(empty);
        _sparseEngine = ml.Model.CreatePredictionEngine<PixelInput, ScoreOutput>(sparse, inputSchemaDefinition: schema, outputSchemaDefinition: outputSchema);
        _row = new PixelInput { Pixels = _input };

        // No warm-up of our own: SparseModel.Load runs one inference, and the kernels are compiled at full optimization
        // from the start (docs/design.md, "Warm-up"), so BenchmarkDotNet's pilot and warm-up stages see final code.
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _workspace.Dispose();
        _ortInput.Dispose();
        _ortOutput.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
        _onnxEngine.Dispose();
        _sparseEngine.Dispose();
    }

    [Benchmark(Baseline = true, Description = "ONNX Runtime session")]
    public void OnnxRuntime() => _session.Run(_runOptions, _inputNames, _ortInputs, _outputNames, _ortOutputs);

    [Benchmark(Description = "ONNX Runtime via ApplyOnnxModel")]
    public void OnnxRuntimePredictionEngine() => _onnxEngine.Predict(_row, ref _score);

    [Benchmark(Description = "Sparse engine")]
    public void SparseEngine() => _sparse.Run(_input, _output, _workspace);

    [Benchmark(Description = "Sparse via ScoreSparseMobileNet")]
    public void SparsePredictionEngine() => _sparseEngine.Predict(_row, ref _score);
}
