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

    /// <summary>Writes <see cref="TinyModel"/> to a new temporary file.</summary>
    public static string WriteTinyModelFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sparse-mlnet-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, TinyModel);
        return path;
    }

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
