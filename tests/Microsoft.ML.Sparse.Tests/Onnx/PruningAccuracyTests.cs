using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// What one-shot magnitude pruning without fine-tuning costs: top-1 agreement of pruned real MobileNets with their
/// dense originals (scored by ONNX Runtime) on the ../shared photos, each seen through several crops and mirror images.
/// The figures in docs/pruning.md come from this test's output.
/// </summary>
public class PruningAccuracyTests
{
    private static readonly (string Name, PruningOptions Options)[] Settings =
    [
        ("per layer 10%", new() { TargetSparsity = 0.1f }),
        ("per layer 30%", new() { TargetSparsity = 0.3f }),
        ("per layer 50%", new() { TargetSparsity = 0.5f }),
        ("per layer 70%", new() { TargetSparsity = 0.7f }),
        ("per layer 90%", new() { TargetSparsity = 0.9f }),
        ("global 50%", new() { TargetSparsity = 0.5f, Scope = PruningScope.Global }),
        ("global 70%", new() { TargetSparsity = 0.7f, Scope = PruningScope.Global }),
        ("global 90%", new() { TargetSparsity = 0.9f, Scope = PruningScope.Global }),
        ("per layer 50%, blocks of 4", new() { TargetSparsity = 0.5f, BlockSize = 4 }),
        ("per layer 90%, blocks of 4", new() { TargetSparsity = 0.9f, BlockSize = 4 }),
    ];

    [Theory]
    [InlineData("mobilenet_v1_1.0_224.onnx")]
    [InlineData("mobilenet_v2_1.0_224.onnx")]
    public void TopOneAgreementWithTheDenseModelFallsAsSparsityGrows(string modelFile)
    {
        string modelPath = SharedData.Require("models/" + modelFile);
        var views = PhotoViews(SharedData.Require("images/bird.bmp"), 224);
        byte[] dense = File.ReadAllBytes(modelPath);
        int[] denseTop1 = TopOne(dense, views);

        var agreement = new Dictionary<string, double> { ["dense (re-written at 0%)"] = Agreement(denseTop1, Prune(dense, new() { TargetSparsity = 0f }), views) };
        foreach (var (name, options) in Settings) agreement[name] = Agreement(denseTop1, Prune(dense, options), views);

        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine($"{modelFile}: top-1 agreement with the dense model over {views.Count} views ({views.Count / ViewsPerPhoto} photos x {ViewsPerPhoto})");
        foreach (var (name, value) in agreement) output?.WriteLine($"  {name,-28} {value.ToString("P1", CultureInfo.InvariantCulture)}");

        Assert.Equal(1.0, agreement["dense (re-written at 0%)"]);
        // These dequantized, BatchNorm-folded MobileNets lose most agreement by 50% (see docs/pruning.md). Light pruning
        // must still mostly agree: a pruner zeroing the wrong (large) weights collapses agreement even at 10%.
        Assert.True(agreement["per layer 10%"] >= 0.6, $"per layer 10%: {agreement["per layer 10%"]:P1}");
        Assert.True(agreement["per layer 10%"] > agreement["per layer 90%"], "agreement did not fall from 10% to 90% sparsity");
    }

    private static byte[] Prune(byte[] model, PruningOptions options)
    {
        OnnxPruner.Prune(model, out byte[] pruned, options, TestContext.Current.CancellationToken);
        return pruned;
    }

    internal static double Agreement(int[] reference, byte[] model, List<float[]> views) =>
        (double)TopOne(model, views).Zip(reference).Count(pair => pair.First == pair.Second) / reference.Length;

    internal static int[] TopOne(byte[] model, List<float[]> views)
    {
        using var reference = new OnnxRuntimeReference(model);
        return views.Select(view =>
        {
            float[] scores = reference.Run(view, 1, 3, 224, 224);
            return Array.IndexOf(scores, scores.Max());
        }).ToArray();
    }

    private const int ViewsPerPhoto = 4;

    /// <summary>Every photo beside <paramref name="anyPhoto"/> as 2 central crops (87.5%, 100%) x mirrored or not,
    /// resized to <paramref name="size"/> and scaled to [-1, 1] (TF MobileNet preprocessing), NCHW RGB.</summary>
    internal static List<float[]> PhotoViews(string anyPhoto, int size)
    {
        string[] extensions = [".bmp", ".jpg", ".png"];
        var photos = Directory.GetFiles(Path.GetDirectoryName(anyPhoto)!).Where(p => extensions.Contains(Path.GetExtension(p))).Order(StringComparer.Ordinal);
        var views = new List<float[]>();
        foreach (string photo in photos)
        {
            using var image = MLImage.CreateFromFile(photo);
            foreach (float crop in new[] { 0.875f, 1f })
                foreach (bool mirror in new[] { false, true })
                    views.Add(CropResize(image, crop, mirror, size));
        }
        return views;
    }

    private static float[] CropResize(MLImage image, float crop, bool mirror, int size)
    {
        byte[] pixels = image.Pixels.ToArray();
        bool bgra = image.PixelFormat == MLPixelFormat.Bgra32;
        float cropWidth = image.Width * crop, cropHeight = image.Height * crop;
        float left = (image.Width - cropWidth) / 2, top = (image.Height - cropHeight) / 2;
        var tensor = new float[3 * size * size];
        for (int y = 0; y < size; y++)
        {
            float sourceY = Math.Clamp(top + (y + 0.5f) * cropHeight / size - 0.5f, 0, image.Height - 1);
            int y0 = (int)sourceY, y1 = Math.Min(y0 + 1, image.Height - 1);
            float fy = sourceY - y0;
            for (int x = 0; x < size; x++)
            {
                int column = mirror ? size - 1 - x : x;
                float sourceX = Math.Clamp(left + (column + 0.5f) * cropWidth / size - 0.5f, 0, image.Width - 1);
                int x0 = (int)sourceX, x1 = Math.Min(x0 + 1, image.Width - 1);
                float fx = sourceX - x0;
                for (int channel = 0; channel < 3; channel++)
                {
                    int byteOffset = bgra ? 2 - channel : channel;
                    float Pixel(int px, int py) => pixels[(py * image.Width + px) * 4 + byteOffset];
                    float top0 = Pixel(x0, y0) + (Pixel(x1, y0) - Pixel(x0, y0)) * fx;
                    float bottom = Pixel(x0, y1) + (Pixel(x1, y1) - Pixel(x0, y1)) * fx;
                    tensor[(channel * size + y) * size + x] = (top0 + (bottom - top0) * fy) / 127.5f - 1f;
                }
            }
        }
        return tensor;
    }
}
