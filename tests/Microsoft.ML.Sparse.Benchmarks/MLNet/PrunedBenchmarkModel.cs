using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse.Benchmarks.MLNet;

/// <summary>
/// The model the ML.NET benchmarks score, written to a temporary file: <see cref="MobileNet"/> is
/// ../shared/models/mobilenet_v1_1.0_224.onnx pruned to 90% (1x1 layers) when ../shared is present, else a generated
/// MobileNet v1 224 with 90% sparse 1x1 weights; <see cref="Tiny"/> is a generated width-0.25 32x32 MobileNet v1 whose
/// short run time makes the fixed per-image cost of ML.NET measurable.
/// </summary>
internal sealed class PrunedBenchmarkModel : IDisposable
{
    public const string MobileNet = "mobilenet_v1_224";
    public const string Tiny = "tiny_v1_32";

    public PrunedBenchmarkModel(string kind = MobileNet)
    {
        File = Path.Combine(Path.GetTempPath(), $"sparse-mlnet-bench-{Guid.NewGuid():N}.onnx");
        string? shared = FindSharedModel();
        if (kind == Tiny)
        {
            System.IO.File.WriteAllBytes(File, SyntheticMobileNet.Create(new SyntheticMobileNetOptions
            {
                WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, PointwiseSparsity = 0.9f, Seed = 1,
            }));
            Description = "generated MobileNet v1 0.25 32x32, 10 classes, 90% sparse 1x1 weights";
        }
        else if (shared is not null)
        {
            OnnxPruner.Prune(shared, File, new PruningOptions { TargetSparsity = 0.9f });
            Description = "mobilenet_v1_1.0_224 pruned to 90%";
        }
        else
        {
            System.IO.File.WriteAllBytes(File, SyntheticMobileNet.Create(new SyntheticMobileNetOptions { PointwiseSparsity = 0.9f, Seed = 1 }));
            Description = "generated MobileNet v1 224, 90% sparse 1x1 weights";
        }
        Model = SparseModel.Load(File, new SparseModelOptions { Threads = 1 });
        Console.WriteLine($"// Model: {Description}");
    }

    public string File { get; }

    public string Description { get; }

    /// <summary>The model imported with one thread, for the raw engine baseline.</summary>
    public SparseModel Model { get; }

    public VectorDataViewType InputType => new(NumberDataViewType.Single, Model.InputShape.ToArray());

    public float[][] RandomImages(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(_ => Enumerable.Range(0, Model.InputLength).Select(_ => random.NextSingle() * 2f - 1f).ToArray())
            .ToArray();
    }

    /// <summary>Schema for <see cref="PixelInput"/> with the model's input name and shape.</summary>
    public SchemaDefinition InputSchema()
    {
        var schema = SchemaDefinition.Create(typeof(PixelInput));
        schema[0].ColumnType = InputType;
        schema[0].ColumnName = Model.InputName;
        return schema;
    }

    /// <summary>Schema for <see cref="ScoreOutput"/> reading the model's output column.</summary>
    public SchemaDefinition OutputSchema()
    {
        var schema = SchemaDefinition.Create(typeof(ScoreOutput));
        schema[0].ColumnName = Model.OutputName;
        return schema;
    }

    public void Dispose() => System.IO.File.Delete(File);

    private static string? FindSharedModel()
    {
        string path = EndToEnd.BenchmarkModels.SharedModelPath("mobilenet_v1_1.0_224");
        return System.IO.File.Exists(path) ? path : null;
    }

    public sealed class PixelInput
    {
        public float[] Pixels { get; set; } = [];
    }

    public sealed class ScoreOutput
    {
        public float[] Scores { get; set; } = [];
    }
}
