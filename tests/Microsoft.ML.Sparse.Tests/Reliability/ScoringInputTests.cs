using Google.Protobuf;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Tests.MLNet;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>
/// Bad inputs on the scoring path: wrong lengths (SparseModel.Run, the transformer at Fit and per row), NaN/Inf pixels,
/// empty data views, unreadable images in an image pipeline, and declared shapes that disagree with the graph.
/// </summary>
public sealed class ScoringInputTests
{
    private static readonly Lazy<SparseModel> s_tiny = new(() => SparseModel.Load(MLNetTestData.TinyModel, new SparseModelOptions { Threads = 1 }));

    private static SparseModel Tiny => s_tiny.Value;

    private static SparseModel Generated(SyntheticArchitecture architecture, SimdWidth width) =>
        SparseModel.Load(SyntheticMobileNet.Create(new SyntheticMobileNetOptions
        {
            Architecture = architecture, WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, Seed = 3,
        }), new SparseModelOptions { Threads = 1, MaxSimdWidth = width });

    [Theory]
    [InlineData(0, 10)]
    [InlineData(MLNetTestData.InputLength - 1, 10)]
    [InlineData(MLNetTestData.InputLength + 1, 10)]
    [InlineData(MLNetTestData.InputLength, 9)]
    [InlineData(MLNetTestData.InputLength, 20)]
    [InlineData(2 * MLNetTestData.InputLength, 10)]
    public void Run_WithWrongLengths_ThrowsArgumentExceptionAndTheWorkspaceStillScores(int inputLength, int outputLength)
    {
        using var workspace = Tiny.CreateWorkspace();
        var image = MLNetTestData.RandomImages(1, seed: 4)[0];
        var expected = new float[Tiny.OutputLength];
        Tiny.Run(image, expected, workspace);

        var error = Assert.ThrowsAny<ArgumentException>(() => Tiny.Run(new float[inputLength], new float[outputLength], workspace));
        Assert.Contains("floats", error.Message);

        var again = new float[Tiny.OutputLength];
        Tiny.Run(image, again, workspace);
        Assert.Equal(expected, again);
    }

    [Fact]
    public void Run_WithAnotherModelsWorkspaceOrNone_Throws()
    {
        var other = SparseModel.Load(MLNetTestData.TinyModel, new SparseModelOptions { Threads = 1 }, TestContext.Current.CancellationToken);
        using var foreign = other.CreateWorkspace();
        var image = new float[Tiny.InputLength];
        Assert.Throws<ArgumentException>(() => Tiny.Run(image, new float[Tiny.OutputLength], foreign));
        Assert.Throws<ArgumentNullException>(() => Tiny.Run(image, new float[Tiny.OutputLength], null!));
        var disposed = Tiny.CreateWorkspace();
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Tiny.Run(image, new float[Tiny.OutputLength], disposed));
    }

    /// <summary>
    /// Non-finite pixels never throw. A NaN pixel turns every output NaN. One infinite pixel is clamped away by ReLU6
    /// (v1, v2: all outputs finite) but becomes NaN through HardSwish/Swish (Inf x 0 in a later layer: v3, EfficientNet).
    /// An image made only of infinities gives NaN everywhere. The same at every SIMD width.
    /// </summary>
    [Theory]
    [InlineData(SyntheticArchitecture.MobileNetV1, true)]
    [InlineData(SyntheticArchitecture.MobileNetV2, true)]
    [InlineData(SyntheticArchitecture.MobileNetV3Small, false)]
    [InlineData(SyntheticArchitecture.EfficientNetB0, false)]
    public void NonFinitePixels_PropagateWithoutThrowing(SyntheticArchitecture architecture, bool reluClampsOneInfinitePixel)
    {
        foreach (SimdWidth width in new[] { SimdWidth.Scalar, SimdWidth.Vector256, SimdWidth.Auto })
        {
            var model = Generated(architecture, width);
            using var workspace = model.CreateWorkspace();
            foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            {
                var image = MLNetTestData.RandomImages(1, seed: 6)[0];
                image[1234] = bad;
                var output = new float[model.OutputLength];
                model.Run(image, output, workspace);
                bool finite = !float.IsNaN(bad) && reluClampsOneInfinitePixel;
                Assert.True(finite ? output.All(float.IsFinite) : output.All(float.IsNaN), $"{width}, one {bad} pixel: [{string.Join(", ", output)}]");

                model.Run(Enumerable.Repeat(bad, model.InputLength).ToArray(), output, workspace);
                Assert.True(output.All(float.IsNaN), $"{width}, all pixels {bad}: [{string.Join(", ", output)}]");
            }
        }
    }

    [Fact]
    public void Transformer_WithAWrongSizeColumn_ThrowsAtFitNamingTheColumn()
    {
        var mlContext = new MLContext(seed: 1);
        var wrongSize = MLNetTestData.LoadPixels(mlContext, MLNetTestData.RandomImages(2, 1, length: 3 * 16 * 16),
            type: new VectorDataViewType(NumberDataViewType.Single, 3, 16, 16));
        var estimator = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel });
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(wrongSize));
        Assert.Contains("'input'", error.Message);
        Assert.Contains("3072", error.Message);
    }

    [Fact]
    public void PredictionEngine_WithAWrongLengthRow_ThrowsNamingTheRowAndKeepsScoring()
    {
        var mlContext = new MLContext(seed: 1);
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel })
            .Fit(MLNetTestData.LoadPixels(mlContext, []));
        using var engine = mlContext.Model.CreatePredictionEngine<MLNetTestData.TinyInput, MLNetTestData.TinyOutput>(transformer);
        var error = Assert.Throws<InvalidOperationException>(() => engine.Predict(new MLNetTestData.TinyInput { Pixels = new float[5] }));
        Assert.Contains("holds a vector of 5 values", error.Message);

        var image = MLNetTestData.RandomImages(1, seed: 2)[0];
        Assert.Equal(MLNetTestData.ScoreDirectly(transformer.Model, [image])[0], engine.Predict(new MLNetTestData.TinyInput { Pixels = image }).Scores);
    }

    [Fact]
    public void EmptyDataView_FitsAndTransformsToNoRows()
    {
        var mlContext = new MLContext(seed: 1);
        var empty = MLNetTestData.LoadPixels(mlContext, []);
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel }).Fit(empty);
        Assert.Empty(MLNetTestData.ReadVectors(transformer.Transform(empty), "output"));
    }

    /// <summary>
    /// ML.NET's own image transforms fail on unreadable rows: LoadImages throws FileNotFoundException for a missing file,
    /// and ExtractPixels throws InvalidOperationException ("Object is disposed") for an empty path (LoadImages' null image).
    /// The scorer passes those exceptions through unchanged, on the row that has them, and the cursor scores the next row.
    /// </summary>
    [Fact]
    public void ImagePipeline_MissingOrEmptyImage_ThrowsMLNetsErrorOnThatRowOnly()
    {
        string bird = SharedData.Require("images/bird.bmp");
        var mlContext = new MLContext(seed: 1);
        var rows = mlContext.Data.LoadFromEnumerable(new[] { "bird.bmp", "no_such_image.bmp", "", "bird.bmp" }.Select(path => new ImagePath { Path = path }));
        var pipeline = mlContext.Transforms.LoadImages("image", Path.GetDirectoryName(bird)!, nameof(ImagePath.Path))
            .Append(mlContext.Transforms.ResizeImages("image", MLNetTestData.Resolution, MLNetTestData.Resolution, "image"))
            .Append(mlContext.Transforms.ExtractPixels("input", "image"))
            .Append(mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel }));
        var scored = pipeline.Fit(rows).Transform(rows);

        using var cursor = scored.GetRowCursor(scored.Schema);
        var getScores = cursor.GetGetter<VBuffer<float>>(scored.Schema["output"]);
        var scores = default(VBuffer<float>);
        var outcomes = new List<string>();
        while (cursor.MoveNext())
        {
            try
            {
                getScores(ref scores);
                outcomes.Add(scores.Length == MLNetTestData.Classes && scores.DenseValues().All(float.IsFinite) ? "scored" : "bad scores");
            }
            catch (Exception e)
            {
                outcomes.Add(e.GetType().Name);
            }
        }
        Assert.Equal(["scored", nameof(FileNotFoundException), nameof(InvalidOperationException), "scored"], outcomes);
    }

    [Fact]
    public void DeclaredOutputShapeThatDisagreesWithTheGraph_IsIgnoredForTheComputedShape()
    {
        var model = ModelProto.Parser.ParseFrom(MLNetTestData.TinyModel);
        model.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue = 3; // the graph computes 10 classes
        var loaded = SparseModel.Load(model.ToByteArray(), null, TestContext.Current.CancellationToken);
        Assert.Equal([MLNetTestData.Classes], loaded.OutputShape);

        var mlContext = new MLContext(seed: 1);
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = model.ToByteArray() })
            .Fit(MLNetTestData.LoadPixels(mlContext, []));
        Assert.Equal(MLNetTestData.Classes, transformer.OutputType.Size);
        var images = MLNetTestData.RandomImages(2, seed: 8);
        var view = transformer.Transform(MLNetTestData.LoadPixels(mlContext, images));
        Assert.Equal(MLNetTestData.ScoreDirectly(Tiny, images), MLNetTestData.ReadVectors(view, "output"));
    }

    [Fact]
    public void InputShapeOverride_ContradictingFixedDimsThrows_OnDynamicDimsReshapesTheSchema()
    {
        var mlContext = new MLContext(seed: 1);
        var contradicting = new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel, InputShape = [1, 3, 64, 64] };
        Assert.Throws<ArgumentException>(() => mlContext.Transforms.ScoreSparseMobileNet(contradicting));

        var model = ModelProto.Parser.ParseFrom(MLNetTestData.TinyModel);
        var dims = model.Graph.Input[0].Type.TensorType.Shape.Dim;
        dims[2].DimParam = "height";
        dims[3].DimParam = "width";
        var dynamic = new SparseMobileNetOptions { ModelBytes = model.ToByteArray(), InputShape = [1, 3, 64, 64] };
        var estimator = mlContext.Transforms.ScoreSparseMobileNet(dynamic);
        // The 32x32 column no longer matches the 64x64 the override asks for.
        Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(MLNetTestData.LoadPixels(mlContext, [])));

        var images = MLNetTestData.RandomImages(2, seed: 9, length: 3 * 64 * 64);
        var view = MLNetTestData.LoadPixels(mlContext, images, type: new VectorDataViewType(NumberDataViewType.Single, 3, 64, 64));
        var scores = MLNetTestData.ReadVectors(estimator.Fit(view).Transform(view), "output");
        Assert.All(scores, row => Assert.Equal(MLNetTestData.Classes, row.Length));
        Assert.All(scores, row => Assert.All(row, value => Assert.True(float.IsFinite(value))));
    }

    public sealed class ImagePath
    {
        public string Path { get; set; } = "";
    }
}
