using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>
/// The full image pipeline LoadImages -> ResizeImages -> ExtractPixels -> scorer on the real MobileNets and photos in
/// ../shared: ScoreSparseMobileNet against ApplyOnnxModel (ONNX Runtime), PredictionEngine and save/load.
/// </summary>
public class ImagePipelineTests
{
    private static readonly string[] s_images =
        ["bird.bmp", "cat.bmp", "dragonfly.bmp", "grace_hopper.bmp", "hot_dog.jpg", "owl.jpg", "parrot.jpg", "sunflower.bmp", "kitten_224.png", "fish.png"];

    private readonly MLContext _mlContext = new(seed: 1);

    public static TheoryData<string, int> CoralModels => new()
    {
        { "mobilenet_v1_1.0_224.onnx", 224 },
        { "mobilenet_v2_1.0_224.onnx", 224 },
        { "mobilenet_v1_0.75_192.onnx", 192 },
    };

    [Theory]
    [MemberData(nameof(CoralModels))]
    public void SparseScorerGivesApplyOnnxModelsTop5AndScores(string modelName, int resolution)
    {
        string modelFile = SharedData.Require($"models/{modelName}");
        var images = LoadImagePaths();

        var sparse = Preprocess(resolution).Append(_mlContext.Transforms.ScoreSparseMobileNet("output", "input", modelFile)).Fit(images);
        var onnx = Preprocess(resolution).Append(_mlContext.Transforms.ApplyOnnxModel("output", "input", modelFile)).Fit(images);
        float[][] sparseScores = MLNetTestData.ReadVectors(sparse.Transform(images), "output");
        float[][] onnxScores = MLNetTestData.ReadVectors(onnx.Transform(images), "output");

        Assert.Equal(s_images.Length, sparseScores.Length);
        for (int i = 0; i < s_images.Length; i++)
        {
            Assert.Equal(onnxScores[i].Length, sparseScores[i].Length);
            Assert.True(TopK(onnxScores[i], 5).SequenceEqual(TopK(sparseScores[i], 5)),
                $"{s_images[i]}: top-5 ONNX Runtime [{string.Join(", ", TopK(onnxScores[i], 5))}] vs sparse [{string.Join(", ", TopK(sparseScores[i], 5))}]");
            // Relative to the score vector's scale: max |sparse - onnx| <= 1e-4 * max |onnx|.
            float scale = onnxScores[i].Max(Math.Abs);
            float worst = onnxScores[i].Zip(sparseScores[i], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst <= 1e-4f * scale, $"{s_images[i]}: max difference {worst} > 1e-4 * {scale}");
        }
    }

    [Fact]
    public void PredictionEngineAndSavedPipelineGiveTheTransformScoresBitExactly()
    {
        string modelFile = SharedData.Require("models/mobilenet_v1_0.75_192.onnx");
        var images = LoadImagePaths();
        var model = Preprocess(192).Append(_mlContext.Transforms.ScoreSparseMobileNet("output", "input", modelFile)).Fit(images);
        float[][] expected = MLNetTestData.ReadVectors(model.Transform(images), "output");

        var engine = _mlContext.Model.CreatePredictionEngine<ImageInput, ImageScores>(model);
        for (int i = 0; i < s_images.Length; i++)
            Assert.Equal(expected[i], engine.Predict(new ImageInput { ImagePath = s_images[i] }).Output);

        using var zip = new MLNetTestData.TemporaryFile(".zip");
        _mlContext.Model.Save(model, images.Schema, zip.Path);
        var loadContext = new MLContext(seed: 2);
        var loaded = loadContext.Model.Load(zip.Path, out _);
        Assert.Equal(expected, MLNetTestData.ReadVectors(loaded.Transform(images), "output"));
        var loadedEngine = loadContext.Model.CreatePredictionEngine<ImageInput, ImageScores>(loaded);
        Assert.Equal(expected[3], loadedEngine.Predict(new ImageInput { ImagePath = s_images[3] }).Output);
    }

    /// <summary>
    /// Preprocessing of the coral MobileNets: RGB planes (CHW), x/127.5 - 1. ML.NET's ExtractPixels computes
    /// (pixel - offsetImage) * scaleImage. (The models' reference preprocessing crops the central 87.5%; both pipelines
    /// compared here share ResizeImages' centred isotropic crop instead.)
    /// </summary>
    private EstimatorChain<ImagePixelExtractingTransformer> Preprocess(int resolution) =>
        _mlContext.Transforms.LoadImages("image", ImageFolder, nameof(ImageInput.ImagePath))
            .Append(_mlContext.Transforms.ResizeImages("image", resolution, resolution, "image", ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
            .Append(_mlContext.Transforms.ExtractPixels("input", "image", offsetImage: 127.5f, scaleImage: 1f / 127.5f));

    private static string ImageFolder => Path.Combine(SharedData.Root, "images");

    private IDataView LoadImagePaths()
    {
        foreach (string image in s_images) SharedData.Require($"images/{image}");
        return _mlContext.Data.LoadFromEnumerable(s_images.Select(image => new ImageInput { ImagePath = image }));
    }

    private static int[] TopK(float[] scores, int k) =>
        scores.Select((score, index) => (score, index)).OrderByDescending(p => p.score).ThenBy(p => p.index).Take(k).Select(p => p.index).ToArray();

    public sealed class ImageInput
    {
        public string ImagePath { get; set; } = "";
    }

    public sealed class ImageScores
    {
        [ColumnName("output")]
        public float[] Output { get; set; } = [];
    }
}
