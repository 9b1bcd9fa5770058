using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse.Benchmarks.EndToEnd;
using Microsoft.ML.Sparse.Onnx.Pruning;

namespace Microsoft.ML.Sparse.Benchmarks.Pruning;

/// <summary>
/// `pruning [--models a,b] [--sparsities 0.3,0.5] [--images N] [--folder DIR] [--dampening D] [--global] [--keep-classifier]`: top-1 agreement of pruned models with
/// their dense originals, magnitude vs calibrated reconstruction. The photos (../shared/images, or --folder) are split
/// in two halves by ordinal name (even / odd positions); each half calibrates (at most --images photos) and the other
/// half is scored through five crops each (centre and the four edges), then the halves swap. Scores come from the
/// sparse engine on one thread; docs/pruning.md's table is this command's output.
/// </summary>
internal static class PruningAgreement
{
    private static readonly string[] s_extensions = [".bmp", ".jpg", ".jpeg", ".png"];

    public static int Run(string[] args)
    {
        string[] models = ["mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224"];
        double[] sparsities = [0.3, 0.5, 0.7, 0.9];
        int maxImages = 8;
        float? dampening = null;
        var scope = PruningScope.PerLayer;
        bool keepClassifier = false;
        string folder = Path.GetFullPath(Path.Combine(BenchmarkModels.RepositoryRoot, "..", "shared", "images"));
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--models" when i + 1 < args.Length: models = args[++i].Split(','); break;
                case "--sparsities" when i + 1 < args.Length: sparsities = args[++i].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--images" when i + 1 < args.Length: maxImages = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--folder" when i + 1 < args.Length: folder = args[++i]; break;
                case "--scope" when i + 1 < args.Length: scope = Enum.Parse<PruningScope>(args[++i].Replace("-", ""), ignoreCase: true); break;
                case "--dampening" when i + 1 < args.Length: dampening = float.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--global": scope = PruningScope.Global; break;
                case "--keep-classifier": keepClassifier = true; break;
                default:
                    Console.Error.WriteLine($"pruning: unexpected argument '{args[i]}'; usage: pruning [--models a,b] [--sparsities 0.3,0.5] [--images 8] [--folder DIR] [--scope per-layer|global|erdos-renyi] [--global] [--dampening 0.1] [--keep-classifier]");
                    return 2;
            }
        }
        string[] photos = Directory.EnumerateFiles(folder).Where(p => s_extensions.Contains(Path.GetExtension(p).ToLowerInvariant())).Order(StringComparer.Ordinal).ToArray();
        string[][] halves = [photos.Where((_, i) => i % 2 == 0).ToArray(), photos.Where((_, i) => i % 2 == 1).ToArray()];
        Console.WriteLine($"{photos.Length} photos in {folder}; split A = {string.Join(" ", halves[0].Select(Path.GetFileName))}; split B = {string.Join(" ", halves[1].Select(Path.GetFileName))}");
        Console.WriteLine($"{Environment.ProcessorCount} logical CPUs, {System.Runtime.InteropServices.RuntimeInformation.OSArchitecture}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");

        foreach (string model in models)
        {
            string path = BenchmarkModels.SharedModelPath(model);
            byte[] dense = File.ReadAllBytes(path);
            var denseModel = SparseModel.Load(dense, new SparseModelOptions { Threads = 1 });
            var geometry = ImageGeometry.Of(denseModel.InputShape, hwc: false);
            Console.WriteLine();
            Console.WriteLine($"## {model}: top-1 agreement with the dense model (calibrate on one half, score the other half x 5 crops)");
            Console.WriteLine("| sparsity | magnitude | reconstruction, calibrated on A, scored on B | reconstruction, calibrated on B, scored on A | seconds to prune (A) |");
            Console.WriteLine("|---:|---:|---:|---:|---:|");
            var views = halves.Select(half => half.SelectMany(photo => EdgeCrops(photo, geometry)).ToList()).ToArray();
            int[][] denseTop = views.Select(v => TopOne(denseModel, v)).ToArray();
            foreach (double sparsity in sparsities)
            {
                var magnitudeOptions = new PruningOptions { TargetSparsity = (float)sparsity, Scope = scope, IncludeClassifier = !keepClassifier };
                OnnxPruner.Prune(dense, out byte[] magnitude, magnitudeOptions);
                var magnitudeModel = SparseModel.Load(magnitude, new SparseModelOptions { Threads = 1 });
                double magnitudeAgreement = (Agreement(denseTop[0], magnitudeModel, views[0]) * views[0].Count + Agreement(denseTop[1], magnitudeModel, views[1]) * views[1].Count)
                    / (views[0].Count + views[1].Count);
                var cells = new List<string> { $"{sparsity:P0}", Percent(magnitudeAgreement) };
                double seconds = 0;
                for (int calibrate = 0; calibrate < 2; calibrate++)
                {
                    int score = 1 - calibrate;
                    var options = new PruningOptions
                    {
                        TargetSparsity = (float)sparsity,
                        Scope = scope,
                        IncludeClassifier = !keepClassifier,
                        Method = PruningMethod.Reconstruction,
                        Calibration = new CalibrationOptions { ImagePaths = halves[calibrate], MaxImages = maxImages },
                    };
                    if (dampening is { } value) options.Calibration.Dampening = value;
                    long start = Stopwatch.GetTimestamp();
                    OnnxPruner.Prune(dense, out byte[] reconstructed, options);
                    if (calibrate == 0) seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                    cells.Add(Percent(Agreement(denseTop[score], SparseModel.Load(reconstructed, new SparseModelOptions { Threads = 1 }), views[score])));
                }
                cells.Add(seconds.ToString("0.0", CultureInfo.InvariantCulture));
                Console.WriteLine("| " + string.Join(" | ", cells) + " |");
            }
        }
        return 0;
    }

    private static string Percent(double value) => (value * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%";

    /// <summary>Five square crops of 80% of the shorter side: centre, left, right, top, bottom edge (centred along the other axis).</summary>
    internal static IEnumerable<float[]> EdgeCrops(string photo, ImageGeometry geometry)
    {
        using var image = MLImage.CreateFromFile(photo);
        var preprocessing = new CalibrationOptions();
        float side = 0.8f * Math.Min(image.Width, image.Height);
        float midX = (image.Width - side) / 2, midY = (image.Height - side) / 2;
        (float Left, float Top)[] anchors = [(midX, midY), (0, midY), (image.Width - side, midY), (midX, 0), (midX, image.Height - side)];
        return anchors.Select(anchor => geometry.Crop(image, anchor.Left, anchor.Top, side, mirror: false, preprocessing)).ToList();
    }

    internal static int[] TopOne(SparseModel model, List<float[]> views)
    {
        using var workspace = model.CreateWorkspace();
        var scores = new float[model.OutputLength];
        return views.Select(view =>
        {
            model.Run(view, scores, workspace);
            return Array.IndexOf(scores, scores.Max());
        }).ToArray();
    }

    private static double Agreement(int[] reference, SparseModel model, List<float[]> views) =>
        (double)TopOne(model, views).Zip(reference).Count(pair => pair.First == pair.Second) / reference.Length;
}
