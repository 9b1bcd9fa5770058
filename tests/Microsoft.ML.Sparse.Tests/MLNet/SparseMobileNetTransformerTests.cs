using Microsoft.ML.Data;
using static Microsoft.ML.Sparse.Tests.MLNet.MLNetTestData;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>ScoreSparseMobileNet on a small generated model: scoring, schema checks, save/load, threading.</summary>
public class SparseMobileNetTransformerTests
{
    private readonly MLContext _mlContext = new(seed: 1);

    private SparseMobileNetTransformer FitTiny(IDataView data, SparseMobileNetOptions? options = null)
    {
        options ??= new SparseMobileNetOptions();
        options.ModelBytes ??= TinyModel;
        return _mlContext.Transforms.ScoreSparseMobileNet(options).Fit(data);
    }

    [Fact]
    public void TransformScoresEachRowExactlyAsSparseModelRun()
    {
        float[][] images = RandomImages(6, seed: 1);
        var data = LoadPixels(_mlContext, images);
        var transformer = FitTiny(data);

        var scored = transformer.Transform(data);

        var outputColumn = scored.Schema["output"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, transformer.Model.OutputShape.ToArray()), outputColumn.Type);
        Assert.Equal(Classes, ((VectorDataViewType)outputColumn.Type).Size);
        Assert.Equal(ScoreDirectly(transformer.Model, images), ReadVectors(scored, "output"));
        // The input columns pass through unchanged.
        Assert.Equal(images, ReadVectors(scored, "input"));
    }

    [Fact]
    public void OutputGetterCalledTwicePerRowAndSparseInputGiveTheSameScores()
    {
        float[][] images = RandomImages(3, seed: 2);
        images[1].AsSpan(0, InputLength / 2).Clear();
        var transformer = FitTiny(LoadPixels(_mlContext, images));
        var expected = ScoreDirectly(transformer.Model, images);
        var scored = transformer.Transform(LoadPixels(_mlContext, images));
        var column = scored.Schema["output"];

        using var cursor = scored.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<float>>(column);
        var first = default(VBuffer<float>);
        var second = default(VBuffer<float>);
        for (int row = 0; cursor.MoveNext(); row++)
        {
            getter(ref first);
            getter(ref second);
            Assert.Equal(expected[row], first.DenseValues());
            Assert.Equal(expected[row], second.DenseValues());
        }

        // A sparse VBuffer input (mostly zeros) is densified before scoring.
        var sparse = new VBuffer<float>(InputLength, 2, [0.5f, -0.25f], [7, 1000]);
        var dense = new float[InputLength];
        sparse.CopyTo(dense);
        var row0 = new SparseVectorRow { Pixels = sparse };
        var engine = _mlContext.Model.CreatePredictionEngine<SparseVectorRow, TinyOutput>(transformer);
        Assert.Equal(ScoreDirectly(transformer.Model, [dense])[0], engine.Predict(row0).Scores);
    }

    [Fact]
    public void ModelFileOverloadNamesColumnsAfterTheGraph()
    {
        using var modelFile = TinyModelFile();

        var transformer = _mlContext.Transforms.ScoreSparseMobileNet(modelFile.Path).Fit(LoadPixels(_mlContext, RandomImages(1, seed: 3)));

        Assert.Equal("input", transformer.InputColumnName);
        Assert.Equal("output", transformer.OutputColumnName);
        Assert.Equal(1, transformer.ThreadsPerRow);
    }

    [Fact]
    public void NamedAndArrayOverloadsScoreTheRenamedColumns()
    {
        float[][] images = RandomImages(2, seed: 4);
        var data = LoadPixels(_mlContext, images, columnName: "pixels");
        using var modelFile = TinyModelFile();

        var named = _mlContext.Transforms.ScoreSparseMobileNet("scores", "pixels", modelFile.Path).Fit(data).Transform(data);
        var arrays = _mlContext.Transforms.ScoreSparseMobileNet(["scores"], ["pixels"], modelFile.Path).Fit(data).Transform(data);

        var expected = ScoreDirectly(SparseModel.Load(TinyModel, cancellationToken: TestContext.Current.CancellationToken), images);
        Assert.Equal(expected, ReadVectors(named, "scores"));
        Assert.Equal(expected, ReadVectors(arrays, "scores"));
        var error = Assert.Throws<ArgumentException>(() => _mlContext.Transforms.ScoreSparseMobileNet(["a", "b"], ["pixels"], modelFile.Path));
        Assert.Contains("exactly one output", error.Message);
        error = Assert.Throws<ArgumentException>(() => _mlContext.Transforms.ScoreSparseMobileNet(["a"], ["x", "y"], modelFile.Path));
        Assert.Contains("exactly one input", error.Message);
    }

    [Fact]
    public void OptionsOverloadTakesBytesOrStreamAndChecksTensorNames()
    {
        float[][] images = RandomImages(2, seed: 5);
        var data = LoadPixels(_mlContext, images, columnName: "pixels");
        var fromBytes = FitTiny(data, new SparseMobileNetOptions
        {
            ModelBytes = TinyModel, InputColumnName = "pixels", OutputColumnName = "scores",
            InputTensorName = "input", OutputTensorName = "output", ThreadsPerRow = 2,
        });
        using var stream = new MemoryStream(TinyModel);
        var fromStream = _mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions
        {
            ModelStream = stream, InputColumnName = "pixels", OutputColumnName = "scores",
        }).Fit(data);

        Assert.Equal(2, fromBytes.ThreadsPerRow);
        Assert.Equal(ScoreDirectly(fromStream.Model, images), ReadVectors(fromStream.Transform(data), "scores"));
        Assert.Equal(ScoreDirectly(fromBytes.Model, images), ReadVectors(fromBytes.Transform(data), "scores"));

        var wrongTensor = Assert.Throws<ArgumentException>(() => _mlContext.Transforms.ScoreSparseMobileNet(
            new SparseMobileNetOptions { ModelBytes = TinyModel, InputTensorName = "data" }));
        Assert.Contains("'data'", wrongTensor.Message);
        Assert.Contains("'input'", wrongTensor.Message);
        var twoSources = Assert.Throws<ArgumentException>(() => _mlContext.Transforms.ScoreSparseMobileNet(
            new SparseMobileNetOptions { ModelBytes = TinyModel, ModelFile = "x.onnx" }));
        Assert.Contains("exactly one of ModelFile, ModelBytes and ModelStream", twoSources.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => _mlContext.Transforms.ScoreSparseMobileNet(
            new SparseMobileNetOptions { ModelBytes = TinyModel, ThreadsPerRow = 0 }));
    }

    public static TheoryData<string, string> WrongInputs => new()
    {
        { "missing", "no such column" },
        { "size", "Vector<Single, 3, 16, 16> (768 values)" },
        { "double", "Vector<Double, 3, 32, 32>" },
        { "scalar", "Single" },
    };

    [Theory]
    [MemberData(nameof(WrongInputs))]
    public void FitRejectsAWrongInputColumnNamingColumnExpectedAndActual(string wrong, string actual)
    {
        IDataView data = wrong switch
        {
            "missing" => LoadPixels(_mlContext, RandomImages(1, seed: 6), columnName: "pixels"),
            "size" => LoadPixels(_mlContext, RandomImages(1, seed: 6, length: 768), type: new VectorDataViewType(NumberDataViewType.Single, 3, 16, 16)),
            "double" => _mlContext.Data.LoadFromEnumerable([new DoubleRow { Input = new double[InputLength] }]),
            _ => _mlContext.Data.LoadFromEnumerable([new ScalarRow { Input = 1f }]),
        };
        var estimator = _mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = TinyModel });

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(data));

        Assert.Contains("Input column 'input'", error.Message);
        Assert.Contains($"expected a known-size vector of Single with {InputLength} values", error.Message);
        Assert.Contains("[3, 32, 32]", error.Message);
        Assert.Contains($"but got {actual}", error.Message);
        // The transformer checks the same when applied to other data.
        var transformer = estimator.Fit(LoadPixels(_mlContext, RandomImages(1, seed: 6)));
        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.Transform(data));
        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.GetRowToRowMapper(data.Schema));
    }

    [Fact]
    public void GetOutputSchemaChecksTheSchemaShape()
    {
        var estimator = _mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = TinyModel, OutputColumnName = "scores" });
        var good = ShapeOf(LoadPixels(_mlContext, RandomImages(1, seed: 7)).Schema);

        var output = estimator.GetOutputSchema(good);

        var scores = Assert.Single(output, c => c.Name == "scores");
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, scores.Kind);
        Assert.Equal(NumberDataViewType.Single, scores.ItemType);
        Assert.Single(output, c => c.Name == "input");
        var missing = ShapeOf(LoadPixels(_mlContext, RandomImages(1, seed: 7), columnName: "pixels").Schema);
        Assert.Contains("Input column 'input'", Assert.Throws<ArgumentOutOfRangeException>(() => estimator.GetOutputSchema(missing)).Message);
        var scalar = ShapeOf(_mlContext.Data.LoadFromEnumerable([new ScalarRow()]).Schema);
        Assert.Contains("but got", Assert.Throws<ArgumentOutOfRangeException>(() => estimator.GetOutputSchema(scalar)).Message);
    }

    [Fact]
    public void PredictionEngineGivesTheTransformScores()
    {
        float[][] images = RandomImages(5, seed: 8);
        var data = LoadPixels(_mlContext, images);
        var transformer = FitTiny(data);
        var expected = ReadVectors(transformer.Transform(data), "output");

        var engine = _mlContext.Model.CreatePredictionEngine<TinyInput, TinyOutput>(transformer);

        for (int i = 0; i < images.Length; i++)
            Assert.Equal(expected[i], engine.Predict(new TinyInput { Pixels = images[i] }).Scores);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void EightThreadsWithOwnPredictionEnginesMatchSingleThreadScores(int threadsPerRow)
    {
        const int Threads = 8, Predictions = 1000;
        float[][] images = RandomImages(16, seed: 9);
        var transformer = FitTiny(LoadPixels(_mlContext, images), new SparseMobileNetOptions { ThreadsPerRow = threadsPerRow });
        var singleThread = _mlContext.Model.CreatePredictionEngine<TinyInput, TinyOutput>(transformer);
        var expected = images.Select(image => singleThread.Predict(new TinyInput { Pixels = image }).Scores).ToArray();

        var mismatches = new int[Threads];
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, thread =>
        {
            var engine = _mlContext.Model.CreatePredictionEngine<TinyInput, TinyOutput>(transformer);
            for (int i = thread; i < Predictions; i += Threads)
            {
                float[] scores = engine.Predict(new TinyInput { Pixels = images[i % images.Length] }).Scores;
                if (!scores.AsSpan().SequenceEqual(expected[i % images.Length])) mismatches[thread]++;
            }
        });

        Assert.All(mismatches, count => Assert.Equal(0, count));
    }

    [Fact]
    public void CursorSetScoresEveryRowOnceLikeASingleCursor()
    {
        float[][] images = RandomImages(40, seed: 10);
        var data = LoadPixels(_mlContext, images);
        var transformer = FitTiny(data);
        var expected = ScoreDirectly(transformer.Model, images);
        var scored = transformer.Transform(data);
        var columns = new[] { scored.Schema["Id"], scored.Schema["output"] };

        var cursors = scored.GetRowCursorSet(columns, 4);
        Assert.Equal(4, cursors.Length); // the in-memory source gives one cursor: the view splits it
        var results = new System.Collections.Concurrent.ConcurrentDictionary<int, float[]>();
        Parallel.ForEach(cursors, cursor =>
        {
            using (cursor)
            {
                var id = cursor.GetGetter<int>(columns[0]);
                var output = cursor.GetGetter<VBuffer<float>>(columns[1]);
                int row = 0;
                var buffer = default(VBuffer<float>);
                while (cursor.MoveNext())
                {
                    id(ref row);
                    output(ref buffer);
                    Assert.True(results.TryAdd(row, buffer.DenseValues().ToArray()), $"row {row} scored twice");
                }
            }
        });

        Assert.Equal(images.Length, results.Count);
        for (int i = 0; i < images.Length; i++) Assert.Equal(expected[i], results[i]);
    }

    [Fact]
    public void InactiveOutputColumnIsNotScoredAndRefusesAGetter()
    {
        var data = LoadPixels(_mlContext, RandomImages(2, seed: 11));
        var scored = FitTiny(data).Transform(data);

        using var cursor = scored.GetRowCursor([scored.Schema["Id"]]);

        Assert.False(cursor.IsColumnActive(scored.Schema["output"]));
        Assert.True(cursor.IsColumnActive(scored.Schema["Id"]));
        Assert.Throws<InvalidOperationException>(() => cursor.GetGetter<VBuffer<float>>(scored.Schema["output"]));
        Assert.Equal(2, Enumerable.Range(0, 3).Count(_ => cursor.MoveNext()));
    }

    // ML.NET builds a SchemaShape from a schema only internally; its pipelines (and these tests) reach that factory.
    private static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static, [typeof(DataViewSchema)])!
            .Invoke(null, [schema])!;

    private sealed class DoubleRow
    {
        [VectorType(3, Resolution, Resolution)]
        [ColumnName("input")]
        public double[] Input { get; set; } = [];
    }

    private sealed class ScalarRow
    {
        [ColumnName("input")]
        public float Input { get; set; }
    }

    private sealed class SparseVectorRow
    {
        [VectorType(3, Resolution, Resolution)]
        [ColumnName("input")]
        public VBuffer<float> Pixels { get; set; }
    }
}
