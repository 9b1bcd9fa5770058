using BenchmarkDotNet.Attributes;
using Microsoft.ML.Transforms.Onnx;

namespace Microsoft.ML.Sparse.Benchmarks.MLNet;

/// <summary>
/// One image through PredictionEngine.Predict with ScoreSparseMobileNet and with ApplyOnnxModel on the same pruned
/// model, against the raw SparseModel.Run: the difference between the first and the last is ML.NET's overhead per
/// image (the tiny model makes it visible). Everything single-threaded (ThreadsPerRow = 1, ONNX Runtime intra-op
/// threads = 1).
/// </summary>
[MemoryDiagnoser]
public class PredictionEngineOverheadBenchmarks
{
    private PrunedBenchmarkModel _model = null!;
    private SparseWorkspace _workspace = null!;
    private float[] _image = null!;
    private float[] _output = null!;
    private PrunedBenchmarkModel.PixelInput _input = null!;
    private PrunedBenchmarkModel.ScoreOutput _prediction = null!;
    private PredictionEngine<PrunedBenchmarkModel.PixelInput, PrunedBenchmarkModel.ScoreOutput> _sparseEngine = null!;
    private PredictionEngine<PrunedBenchmarkModel.PixelInput, PrunedBenchmarkModel.ScoreOutput> _onnxEngine = null!;

    [Params(PrunedBenchmarkModel.Tiny, PrunedBenchmarkModel.MobileNet)]
    public string Model { get; set; } = PrunedBenchmarkModel.Tiny;

    [GlobalSetup]
    public void Setup()
    {
        _model = new PrunedBenchmarkModel(Model);
        _workspace = _model.Model.CreateWorkspace();
        _image = _model.RandomImages(1, seed: 1)[0];
        _output = new float[_model.Model.OutputLength];
        _input = new PrunedBenchmarkModel.PixelInput { Pixels = _image };
        _prediction = new PrunedBenchmarkModel.ScoreOutput();

        var mlContext = new MLContext(seed: 1);
        var data = mlContext.Data.LoadFromEnumerable([_input], _model.InputSchema());
        var sparse = mlContext.Transforms.ScoreSparseMobileNet(_model.Model.OutputName, _model.Model.InputName, _model.File).Fit(data);
        var onnx = mlContext.Transforms.ApplyOnnxModel(new OnnxOptions
        {
            ModelFile = _model.File,
            InputColumns = [_model.Model.InputName],
            OutputColumns = [_model.Model.OutputName],
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
        }).Fit(data);
        _sparseEngine = mlContext.Model.CreatePredictionEngine<PrunedBenchmarkModel.PixelInput, PrunedBenchmarkModel.ScoreOutput>(
            sparse, inputSchemaDefinition: _model.InputSchema(), outputSchemaDefinition: _model.OutputSchema());
        _onnxEngine = mlContext.Model.CreatePredictionEngine<PrunedBenchmarkModel.PixelInput, PrunedBenchmarkModel.ScoreOutput>(
            onnx, inputSchemaDefinition: _model.InputSchema(), outputSchemaDefinition: _model.OutputSchema());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sparseEngine.Dispose();
        _onnxEngine.Dispose();
        _workspace.Dispose();
        _model.Dispose();
    }

    [Benchmark(Baseline = true, Description = "SparseModel.Run")]
    public void RawSparseModelRun() => _model.Model.Run(_image, _output, _workspace);

    [Benchmark(Description = "PredictionEngine + ScoreSparseMobileNet")]
    public void SparsePredictionEngine() => _sparseEngine.Predict(_input, ref _prediction);

    [Benchmark(Description = "PredictionEngine + ApplyOnnxModel")]
    public void OnnxPredictionEngine() => _onnxEngine.Predict(_input, ref _prediction);
}
