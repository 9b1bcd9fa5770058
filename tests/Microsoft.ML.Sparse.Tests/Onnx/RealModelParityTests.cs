using Microsoft.ML.Sparse.Onnx;
using SkiaSharp;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// The real MobileNets of ../shared imported into the engine score like ONNX Runtime (single-threaded): on photos and
/// random inputs, max|ours - ORT| / max|ORT| &lt;= 1e-4 and the same top-5 classes.
/// </summary>
public sealed class RealModelParityTests
{
    private const double Tolerance = 1e-4;

    private static readonly string[] Photos = ["bird.bmp", "hot_dog.jpg", "kitten_224.png"];

    public static TheoryData<string> MobileNets =>
        ["mobilenet_v1_1.0_224.onnx", "mobilenet_v1_0.75_192.onnx", "mobilenet_v2_1.0_224.onnx", "mobilenetv2-12.onnx"];

    [Theory]
    [MemberData(nameof(MobileNets))]
    public void LoweredGraph_EvaluatedByScalarReference_MatchesOnnxRuntime(string model)
    {
        string path = SharedData.Require("models/" + model);
        var graph = SparseModel.Lower(OnnxModelFile.Read(path), null, Cancel);
        using var ort = new OnnxRuntimeReference(path);
        float[] input = RandomImage(graph.InputShape.Length, seed: 11, Preprocessing(model));

        float[] expected = ort.Run(input, [1, .. FileDims(graph)]);
        AssertParity(expected, LoweredGraphReference.Run(graph, input), $"{model} lowered graph, random input");
    }

    [Theory]
    [MemberData(nameof(MobileNets))]
    public void Engine_MatchesOnnxRuntime_OnPhotosAndRandomInputs(string model)
    {
        string path = SharedData.Require("models/" + model);
        var sparse = SparseModel.Load(path, null, Cancel);
        using var workspace = sparse.CreateWorkspace();
        using var ort = new OnnxRuntimeReference(path);
        int[] dims = [1, .. sparse.InputShape];
        var inputs = Photos.Select(photo => (photo, LoadPhoto(SharedData.Require("images/" + photo), sparse.InputShape[1], Preprocessing(model))))
            .Append(("random 1", RandomImage(sparse.InputLength, seed: 1, Preprocessing(model))))
            .Append(("random 2", RandomImage(sparse.InputLength, seed: 2, Preprocessing(model))));
        foreach (var (name, input) in inputs)
        {
            var output = new float[sparse.OutputLength];
            sparse.Run(input, output, workspace);
            AssertParity(ort.Run(input, dims), output, $"{model}, {name}");
        }
    }

    /// <summary>Top-1 ImageNet class (0-based, of 1000) per photo, from the table in ../shared/README.md (ONNX Runtime 1.31).</summary>
    public static TheoryData<string, int, int, int, int> ReadmeTopOne => new()
    {
        // photo: mobilenet_v1_1.0_224, mobilenet_v1_0.75_192, mobilenet_v2_1.0_224, mobilenetv2-12
        { "bird.bmp", 19, 19, 19, 19 },
        { "cat.bmp", 285, 285, 285, 285 },
        { "dragonfly.bmp", 319, 319, 319, 319 },
        { "grace_hopper.bmp", 652, 652, 667, 457 },
        { "hot_dog.jpg", 934, 934, 934, 934 },
        { "owl.jpg", 86, 82, 82, 21 },
        { "parrot.jpg", 88, 88, 88, 88 },
        { "sunflower.bmp", 985, 985, 985, 985 },
        { "kitten_224.png", 281, 281, 281, 281 },
        { "fish.png", 0, 389, 0, 0 },
    };

    [Theory]
    [MemberData(nameof(ReadmeTopOne))]
    public void Engine_ClassifiesPhotosAsTheSharedReadmeSays(string photo, int v1, int v1Small, int v2, int v2Zoo)
    {
        int[] expectedTopOne = [v1, v1Small, v2, v2Zoo];
        string[] models = [.. MobileNets];
        for (int m = 0; m < models.Length; m++)
        {
            var sparse = SparseModel.Load(SharedData.Require("models/" + models[m]), null, Cancel);
            using var workspace = sparse.CreateWorkspace();
            float[] input = LoadPhoto(SharedData.Require("images/" + photo), sparse.InputShape[1], Preprocessing(models[m]));
            var scores = new float[sparse.OutputLength];
            sparse.Run(input, scores, workspace);
            int background = sparse.OutputLength == 1001 ? 1 : 0;
            Assert.True(expectedTopOne[m] == Array.IndexOf(scores, scores.Max()) - background, $"{models[m]} on {photo}");
        }
    }

    public static TheoryData<string, float> PrunedMobileNets()
    {
        var cases = new TheoryData<string, float>();
        foreach (string model in MobileNets)
            foreach (float sparsity in new[] { 0.5f, 0.7f, 0.9f })
                cases.Add(model, sparsity);
        return cases;
    }

    [Theory]
    [MemberData(nameof(PrunedMobileNets))]
    public void PrunedEngine_MatchesOnnxRuntimeOnThePrunedModel(string model, float sparsity)
    {
        string path = SharedData.Require("models/" + model);
        OnnxPruner.Prune(File.ReadAllBytes(path), out byte[] pruned, new PruningOptions { TargetSparsity = sparsity }, Cancel);
        var sparse = SparseModel.Load(pruned, null, Cancel);
        Assert.Contains(sparse.Network.Layers, layer => layer.Kind == "Pointwise" && layer.Sparsity >= sparsity - 0.01f);
        using var workspace = sparse.CreateWorkspace();
        using var ort = new OnnxRuntimeReference(pruned);
        int[] dims = [1, .. sparse.InputShape];
        var inputs = new[]
        {
            ("hot_dog.jpg", LoadPhoto(SharedData.Require("images/hot_dog.jpg"), sparse.InputShape[1], Preprocessing(model))),
            ("random", RandomImage(sparse.InputLength, seed: 4, Preprocessing(model))),
        };
        foreach (var (name, input) in inputs)
        {
            var output = new float[sparse.OutputLength];
            sparse.Run(input, output, workspace);
            AssertParity(ort.Run(input, dims), output, $"{model} pruned to {sparsity:P0}, {name}");
        }
    }

    /// <summary>
    /// torchvision exports with HardSwish/HardSigmoid (MobileNetV3), Sigmoid + Mul (EfficientNet's Swish) and
    /// squeeze-and-excitation, and MNASNet; random weights, so they are compared on random inputs only.
    /// </summary>
    public static TheoryData<string, float> TorchvisionModels()
    {
        var cases = new TheoryData<string, float>();
        foreach (string model in new[] { "torchvision_mobilenet_v3_small.onnx", "torchvision_mobilenet_v3_large.onnx", "torchvision_efficientnet_b0.onnx", "torchvision_mnasnet1_0.onnx" })
            foreach (float sparsity in new[] { 0f, 0.7f, 0.9f })
                cases.Add(model, sparsity);
        return cases;
    }

    /// <summary>Dense and pruned (the same pruned file for both engines), one and two threads, two random inputs each.</summary>
    [Theory]
    [MemberData(nameof(TorchvisionModels))]
    public void TorchvisionModel_MatchesOnnxRuntime_DenseAndPruned_OnOneAndTwoThreads(string model, float sparsity)
    {
        byte[] file = File.ReadAllBytes(SharedData.Require("models/" + model));
        if (sparsity > 0) OnnxPruner.Prune(file, out file, new PruningOptions { TargetSparsity = sparsity }, Cancel);
        using var ort = new OnnxRuntimeReference(file);
        foreach (int threads in new[] { 1, 2 })
        {
            var sparse = SparseModel.Load(file, new SparseModelOptions { Threads = threads }, Cancel);
            if (sparsity > 0) Assert.Contains(sparse.Network.Layers, layer => layer.Kind == "Pointwise" && layer.Sparsity >= sparsity - 0.01f);
            using var workspace = sparse.CreateWorkspace();
            foreach (int seed in new[] { 1, 2 })
            {
                float[] input = RandomImage(sparse.InputLength, seed, ImagePreprocessing.Torchvision);
                var output = new float[sparse.OutputLength];
                sparse.Run(input, output, workspace);
                AssertParity(ort.Run(input, [1, .. sparse.InputShape]), output, $"{model} at {sparsity:P0}, {threads} thread(s), random input {seed}");
            }
        }
    }

    [Fact]
    public void Batch_OfThree_EqualsThreeSingleRunsAndOnnxRuntime()
    {
        string path = SharedData.Require("models/mobilenetv2-12.onnx");
        var sparse = SparseModel.Load(path, null, Cancel);
        using var workspace = sparse.CreateWorkspace();
        float[] batch = RandomImage(3 * sparse.InputLength, seed: 5, ImagePreprocessing.Torchvision);
        var batchOutput = new float[3 * sparse.OutputLength];
        sparse.Run(batch, batchOutput, workspace);

        for (int i = 0; i < 3; i++)
        {
            var single = new float[sparse.OutputLength];
            sparse.Run(batch.AsSpan(i * sparse.InputLength, sparse.InputLength), single, workspace);
            Assert.Equal(single, batchOutput.AsSpan(i * sparse.OutputLength, sparse.OutputLength).ToArray());
        }
        using var ort = new OnnxRuntimeReference(path);
        float[] expected = ort.Run(batch, [3, .. sparse.InputShape]);
        for (int i = 0; i < 3; i++)
            AssertParity(expected[(i * 1000)..((i + 1) * 1000)], batchOutput[(i * 1000)..((i + 1) * 1000)], $"batch image {i}");
    }

    [Fact]
    public void LoadingTwice_GivesTheSamePlanAndBitwiseIdenticalOutputs()
    {
        string path = SharedData.Require("models/mobilenet_v2_1.0_224.onnx");
        var first = SparseModel.Load(path, null, Cancel);
        var second = SparseModel.Load(path, null, Cancel);
        Assert.Equal(first.Describe(), second.Describe());
        Assert.Equal(first.Network.Describe(), SparseModel.Load(File.ReadAllBytes(path), null, Cancel).Network.Describe());

        float[] input = RandomImage(first.InputLength, seed: 3, ImagePreprocessing.Coral);
        float[] a = new float[first.OutputLength], b = new float[second.OutputLength];
        using (var workspace = first.CreateWorkspace()) first.Run(input, a, workspace);
        using (var workspace = second.CreateWorkspace()) second.Run(input, b, workspace);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Describe_ListsModelHeaderAndEveryLayer()
    {
        string path = SharedData.Require("models/mobilenet_v1_1.0_224.onnx");
        var sparse = SparseModel.Load(path, null, Cancel);
        string text = sparse.Describe();

        Assert.Contains(path, text);
        Assert.Contains("opset 13", text);
        Assert.Contains("'input' [N,3,224,224] NCHW", text);
        Assert.Contains($"'{sparse.OutputName}' [N,1001]", text);
        foreach (var layer in sparse.Network.Layers) Assert.Contains(layer.Name, text);
        Assert.Equal([3, 224, 224], sparse.InputShape);
        Assert.Equal([1001], sparse.OutputShape);
    }

    [Fact]
    public void SqueezeNet_IsRejectedAtItsFirstMaxPool()
    {
        string path = SharedData.Require("models/squeezenet1.1.onnx");
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(path, null, Cancel));
        Assert.Equal("MaxPool", error.OpType);
        Assert.False(string.IsNullOrEmpty(error.NodeName));
        Assert.Contains(error.NodeName!, error.Message);
        Assert.Contains(path, error.Message);
        Assert.Contains("supported: Conv", error.Message);
    }

    internal enum ImagePreprocessing
    {
        /// <summary>Coral TF models: central 87.5% crop, resize, x / 127.5 - 1.</summary>
        Coral,
        /// <summary>torchvision: shorter side to 256, centre crop 224, /255, ImageNet mean and std.</summary>
        Torchvision,
    }

    internal static ImagePreprocessing Preprocessing(string model) =>
        model.StartsWith("mobilenetv2-12", StringComparison.Ordinal) ? ImagePreprocessing.Torchvision : ImagePreprocessing.Coral;

    private static int[] FileDims(LoweredGraph graph) => graph.InputDims[1..].Select(d => (int)d).ToArray();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>Random values spread like a preprocessed image: uniform in [-1, 1] (Coral) or roughly [-2, 2.5] (torchvision).</summary>
    internal static float[] RandomImage(int length, int seed, ImagePreprocessing preprocessing)
    {
        var random = new Random(seed);
        float scale = preprocessing == ImagePreprocessing.Coral ? 1f : 2.2f;
        return Enumerable.Range(0, length).Select(_ => scale * (2f * random.NextSingle() - 1f)).ToArray();
    }

    /// <summary>Decodes a photo with SkiaSharp and preprocesses it to a [3, size, size] RGB CHW tensor.</summary>
    internal static float[] LoadPhoto(string path, int size, ImagePreprocessing preprocessing)
    {
        using var photo = SKBitmap.Decode(path) ?? throw new InvalidOperationException($"Cannot decode {path}.");
        SKRect source;
        if (preprocessing == ImagePreprocessing.Coral)
        {
            float width = photo.Width * 0.875f, height = photo.Height * 0.875f;
            source = SKRect.Create((photo.Width - width) / 2, (photo.Height - height) / 2, width, height);
        }
        else
        {
            float side = Math.Min(photo.Width, photo.Height) * 224f / 256f;
            source = SKRect.Create((photo.Width - side) / 2, (photo.Height - side) / 2, side, side);
        }
        using var scaled = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        // Mitchell cubic: what SkiaSharp 2's FilterQuality.High selected.
        using (var canvas = new SKCanvas(scaled))
        using (var image = SKImage.FromBitmap(photo))
        using (var paint = new SKPaint { IsAntialias = true })
            canvas.DrawImage(image, source, SKRect.Create(size, size), new SKSamplingOptions(SKCubicResampler.Mitchell), paint);

        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var tensor = new float[3 * size * size];
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
            {
                SKColor color = scaled.GetPixel(x, y);
                byte[] rgb = [color.Red, color.Green, color.Blue];
                for (int c = 0; c < 3; c++)
                    tensor[(c * size + y) * size + x] = preprocessing == ImagePreprocessing.Coral
                        ? rgb[c] / 127.5f - 1f
                        : (rgb[c] / 255f - mean[c]) / std[c];
            }
        return tensor;
    }

    /// <summary>max|actual - expected| / max|expected| within <see cref="Tolerance"/> and the same top-5 classes.</summary>
    internal static void AssertParity(float[] expected, float[] actual, string what, bool checkTopFive = true)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxReference = expected.Max(v => Math.Abs((double)v));
        double maxError = expected.Zip(actual, (e, a) => Math.Abs((double)e - a)).Max();
        double relative = maxError / maxReference;
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: max|ours-ORT|/max|ORT| = {relative:E2}");
        Assert.True(relative <= Tolerance, $"{what}: max|ours - ORT| / max|ORT| = {relative:E3} exceeds {Tolerance:E0}.");
        if (checkTopFive) Assert.Equal(TopFive(expected), TopFive(actual));
    }

    private static int[] TopFive(float[] scores) =>
        scores.Select((score, index) => (score, index)).OrderByDescending(p => p.score).Take(5).Select(p => p.index).ToArray();
}
