using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>Small generated models and ML.NET data views of random pixel tensors for the ML.NET integration tests.</summary>
internal static class MLNetTestData
{
    public const int Resolution = 32;
    public const int Classes = 10;
    public const int InputLength = 3 * Resolution * Resolution;

    private static readonly Lazy<byte[]> s_tinyModel = new(() => SyntheticMobileNet.Create(new SyntheticMobileNetOptions
    {
        WidthMultiplier = 0.25f,
        Resolution = Resolution,
        Classes = Classes,
        PointwiseSparsity = 0.8f,
        Seed = 5,
    }));

    /// <summary>A MobileNet v1 (width 0.25, 32x32, 10 classes, 80% sparse 1x1 weights) as ONNX bytes; graph names "input" and "output".</summary>
    public static byte[] TinyModel => s_tinyModel.Value;

    /// <summary>A new temporary file path with the given extension, deleted on dispose; optionally written with <paramref name="content"/>.</summary>
    public sealed class TemporaryFile : IDisposable
    {
        public TemporaryFile(string extension, byte[]? content = null)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sparse-mlnet-{Guid.NewGuid():N}{extension}");
            if (content is not null) File.WriteAllBytes(Path, content);
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }

    /// <summary><see cref="TinyModel"/> in a temporary .onnx file.</summary>
    public static TemporaryFile TinyModelFile() => new(".onnx", TinyModel);

    public static float[][] RandomImages(int count, int seed, int length = InputLength)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(_ => Enumerable.Range(0, length).Select(_ => random.NextSingle() * 2f - 1f).ToArray())
            .ToArray();
    }

    /// <summary>A data view with one vector column <paramref name="columnName"/> of type <paramref name="type"/> (default: float vector [3, 32, 32]) and an "Id" column.</summary>
    public static IDataView LoadPixels(MLContext mlContext, float[][] images, string columnName = "input", DataViewType? type = null)
    {
        var schema = SchemaDefinition.Create(typeof(PixelRow));
        var pixels = schema[nameof(PixelRow.Pixels)];
        pixels.ColumnType = type ?? new VectorDataViewType(NumberDataViewType.Single, 3, Resolution, Resolution);
        pixels.ColumnName = columnName;
        var rows = images.Select((pixels, i) => new PixelRow { Id = i, Pixels = pixels });
        return mlContext.Data.LoadFromEnumerable(rows, schema);
    }

    /// <summary>Every row's vector of <paramref name="columnName"/>, densified, in row order.</summary>
    public static float[][] ReadVectors(IDataView view, string columnName)
    {
        var column = view.Schema[columnName];
        using var cursor = view.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var rows = new List<float[]>();
        var buffer = default(VBuffer<float>);
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            rows.Add(buffer.DenseValues().ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>What <see cref="SparseModel.Run"/> gives for each image: the reference the ML.NET layer must reproduce bit for bit.</summary>
    public static float[][] ScoreDirectly(SparseModel model, float[][] images)
    {
        using var workspace = model.CreateWorkspace();
        return images.Select(image =>
        {
            var output = new float[model.OutputLength];
            model.Run(image, output, workspace);
            return output;
        }).ToArray();
    }

    public sealed class PixelRow
    {
        public int Id { get; set; }

        public float[] Pixels { get; set; } = [];
    }

    /// <summary>PredictionEngine input/output over the default column names of the tiny model.</summary>
    public sealed class TinyInput
    {
        [VectorType(3, Resolution, Resolution)]
        [ColumnName("input")]
        public float[] Pixels { get; set; } = [];
    }

    public sealed class TinyOutput
    {
        [ColumnName("output")]
        public float[] Scores { get; set; } = [];
    }
}
