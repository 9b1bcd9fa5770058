using System.Net;
using System.Net.Http.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using ScoringService;
using static Microsoft.ML.Sparse.Tests.Service.ServiceHarness;

namespace Microsoft.ML.Sparse.Tests.Service;

/// <summary>The scoring service's answers: /classify against the library's own scores, /model, /healthz.</summary>
public sealed class ScoringServiceTests
{
    [Fact]
    public async Task Classify_GivesTheLibrarysScoresForImagesOfAnySize()
    {
        await using var app = await StartAsync(o => o.TopK = 10);
        using var client = Client(app);
        var images = new (byte[] Bytes, string Type)[]
        {
            (GeneratedImage.Png(64, 64, seed: 1), "image/png"),
            (GeneratedImage.Png(200, 120, seed: 2), "image/png"),
            (GeneratedImage.Jpeg(97, 301, seed: 3), "image/jpeg"),
            (GeneratedImage.Jpeg(1, 1, seed: 4), "image/jpeg; charset=binary"),
        };
        var model = SparseModel.Load(ModelFile, new SparseModelOptions { Threads = 1 }, TestContext.Current.CancellationToken);
        using var workspace = model.CreateWorkspace();
        var expected = new float[model.OutputLength];
        foreach (var (bytes, type) in images)
        {
            using var response = await PostAsync(client, bytes, type);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var answer = await response.Content.ReadFromJsonAsync<ClassifyResponse>(TestContext.Current.CancellationToken);

            model.Run(PixelsThroughMLNet(bytes, model), expected, workspace);
            int[] order = Enumerable.Range(0, expected.Length).OrderByDescending(i => expected[i]).ToArray();
            Assert.Equal("Sparse", answer!.Scorer);
            Assert.Equal(order, answer.Top.Select(t => t.Index));
            foreach (var top in answer.Top)
            {
                Assert.Equal(expected[top.Index], top.Score, 1e-6f);
                Assert.Equal($"class {top.Index}", top.Label);
            }
            Assert.True(answer.Latency.TotalMs >= answer.Latency.ScoreMs && answer.Latency.ScoreMs > 0);
        }
    }

    [Fact]
    public async Task Classify_ThroughApplyOnnxModel_GivesTheSameClasses()
    {
        byte[] image = GeneratedImage.Png(150, 150, seed: 7);
        async Task<ClassifyResponse> Classify(ScorerKind scorer)
        {
            await using var app = await StartAsync(o => o.Scorer = scorer);
            using var client = Client(app);
            using var response = await PostAsync(client, image, "image/png");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (await response.Content.ReadFromJsonAsync<ClassifyResponse>(TestContext.Current.CancellationToken))!;
        }
        var sparse = await Classify(ScorerKind.Sparse);
        var onnx = await Classify(ScorerKind.OnnxRuntime);
        Assert.Equal("OnnxRuntime", onnx.Scorer);
        Assert.Equal(sparse.Top.Select(t => t.Index), onnx.Top.Select(t => t.Index));
        for (int i = 0; i < sparse.Top.Length; i++) Assert.Equal(onnx.Top[i].Score, sparse.Top[i].Score, 1e-4f);
    }

    [Fact]
    public async Task ModelAndHealth_DescribeTheServedModel()
    {
        await using var app = await StartAsync(o => o.Sparsity = 0.9f);
        using var client = Client(app);
        var cancel = TestContext.Current.CancellationToken;
        var model = await client.GetFromJsonAsync<ModelResponse>("/model", cancel);
        Assert.Equal(ModelFile, model!.Source);
        Assert.Equal([3, 64, 64], model.InputShape);
        Assert.Equal([10], model.OutputShape);
        Assert.InRange(model.Pruning!.PrunedLayersSparsity, 0.89, 0.91);
        // The plan is SparseModel.Describe() of the pruned file, line by line (its first line names that file).
        Assert.StartsWith("Model: ", model.Plan[0]);
        string prunedFile = model.Plan[0]["Model: ".Length..model.Plan[0].IndexOf(" (graph", StringComparison.Ordinal)];
        var pruned = SparseModel.Load(prunedFile, new SparseModelOptions { Threads = 1 }, cancel);
        Assert.Equal(pruned.Describe().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), model.Plan);

        var health = await client.GetFromJsonAsync<HealthResponse>("/healthz", cancel);
        Assert.Equal("ok", health!.Status);
        Assert.True(health.GcHeapBytes > 0 && health.RssBytes > 0);
    }

    [Fact]
    public async Task TheDefaultService_ServesMobileNetV1PrunedTo90Percent_WithTheLibrarysScores()
    {
        // What `dotnet run --project samples/ScoringService` serves: ../shared's MobileNet v1 pruned to 90%, ImageNet labels.
        string source = SharedData.Require("models/mobilenet_v1_1.0_224.onnx");
        byte[] photo = File.ReadAllBytes(SharedData.Require("images/parrot.jpg"));
        await using var app = await StartAsync(o =>
        {
            o.Model = null;
            o.Sparsity = new ScoringServiceOptions().Sparsity;
        });
        using var client = Client(app);
        var cancel = TestContext.Current.CancellationToken;
        var model = await client.GetFromJsonAsync<ModelResponse>("/model", cancel);
        Assert.Equal(Path.GetFullPath(source), Path.GetFullPath(model!.Source));
        Assert.False(model.Generated);
        Assert.InRange(model.Pruning!.PrunedLayersSparsity, 0.89, 0.91);

        using var response = await PostAsync(client, photo, "image/jpeg");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = (await response.Content.ReadFromJsonAsync<ClassifyResponse>(cancel))!;
        string prunedFile = model.Plan[0]["Model: ".Length..model.Plan[0].IndexOf(" (graph", StringComparison.Ordinal)];
        var pruned = SparseModel.Load(prunedFile, new SparseModelOptions { Threads = 1 }, cancel);
        using var workspace = pruned.CreateWorkspace();
        var expected = new float[pruned.OutputLength];
        pruned.Run(PixelsThroughMLNet(photo, pruned), expected, workspace);
        string[] labels = File.ReadAllLines(SharedData.Require("labels/imagenet_labels_1001_coral.txt"));
        int[] order = Enumerable.Range(0, expected.Length).OrderByDescending(i => expected[i]).Take(5).ToArray();
        Assert.Equal(order, answer.Top.Select(t => t.Index));
        foreach (var top in answer.Top)
        {
            Assert.Equal(expected[top.Index], top.Score, 1e-6f);
            Assert.Equal(labels[top.Index], top.Label);
        }
    }

    /// <summary>The pixels the library's ML.NET pipeline gives for an image file: LoadImages -> ResizeImages (centred crop) -> ExtractPixels (x / 127.5 - 1).</summary>
    private static float[] PixelsThroughMLNet(byte[] image, SparseModel model)
    {
        string folder = Directory.CreateTempSubdirectory("scoring-service-image-").FullName;
        try
        {
            File.WriteAllBytes(Path.Combine(folder, "image"), image);
            var mlContext = new MLContext(seed: 1);
            var data = mlContext.Data.LoadFromEnumerable([new ImagePath { Path = "image" }]);
            var pipeline = mlContext.Transforms.LoadImages("image", folder, nameof(ImagePath.Path))
                .Append(mlContext.Transforms.ResizeImages("image", model.InputShape[2], model.InputShape[1], "image", ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center))
                .Append(mlContext.Transforms.ExtractPixels("pixels", "image", offsetImage: 127.5f, scaleImage: 1f / 127.5f));
            var transformed = pipeline.Fit(data).Transform(data);
            using var cursor = transformed.GetRowCursor(transformed.Schema);
            var getter = cursor.GetGetter<VBuffer<float>>(transformed.Schema["pixels"]);
            Assert.True(cursor.MoveNext());
            VBuffer<float> pixels = default;
            getter(ref pixels);
            return pixels.DenseValues().ToArray();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private sealed class ImagePath
    {
        public string Path { get; set; } = "";
    }
}
