using System.Text.Json;
using Microsoft.ML.Sparse;
using SkiaSharp;

namespace SparseMobileNet.Commands;

/// <summary>
/// What classify runs on: the photos and MobileNet in ../shared beside the repository when present, else a model
/// generated in code and generated images in a temporary folder (deleted on dispose), so a fresh clone still runs.
/// </summary>
internal sealed class ClassifyInputs : IDisposable
{
    private const string DefaultModel = "models/mobilenet_v1_1.0_224.onnx";

    private ClassifyInputs(string imageFolder, string modelFile, string? labelsFile, string workFolder, bool generated, bool sharedPhotos = false)
    {
        SharedPhotos = sharedPhotos;
        ImageFolder = imageFolder;
        ModelFile = modelFile;
        LabelsFile = labelsFile;
        WorkFolder = workFolder;
        Generated = generated;
    }

    public string ImageFolder { get; }

    public string ModelFile { get; }

    public string? LabelsFile { get; }

    /// <summary>A temporary folder for the pruned model (and the generated inputs); deleted on dispose.</summary>
    public string WorkFolder { get; }

    /// <summary>True when the photos are ../shared's, taken by default (no image folder given).</summary>
    public bool SharedPhotos { get; }

    /// <summary>True when the model and images were generated (random weights: the labels mean nothing).</summary>
    public bool Generated { get; }

    /// <param name="log">Where to say that generated inputs are used.</param>
    public static ClassifyInputs Resolve(string? imageFolder, string? modelFile, string? labelsFile, TextWriter log)
    {
        string work = Directory.CreateTempSubdirectory("sparse-mobilenet-").FullName;
        string? shared = FindSharedFolder();
        if (imageFolder is null && modelFile is null && shared is null)
        {
            log.WriteLine("No ../shared folder beside the repository: running on a generated MobileNet v1 (random weights) and generated images.");
            string model = Path.Combine(work, "generated_mobilenet_v1.onnx");
            File.WriteAllBytes(model, SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Seed = 1 }));
            string images = Directory.CreateDirectory(Path.Combine(work, "images")).FullName;
            for (int i = 0; i < 3; i++) WriteGeneratedImage(Path.Combine(images, $"generated_{i}.png"), seed: i);
            return new ClassifyInputs(images, model, labelsFile, work, generated: true);
        }

        bool sharedPhotos = imageFolder is null && shared is not null;
        imageFolder ??= shared is null ? null : Path.Combine(shared, "images");
        modelFile ??= shared is null ? null : Path.Combine(shared, DefaultModel);
        if (imageFolder is null || !Directory.Exists(imageFolder))
            throw new ArgumentException(imageFolder is null ? "No image folder given, and no ../shared/images beside the repository." : $"Image folder '{Path.GetFullPath(imageFolder)}' not found.");
        if (modelFile is null || !File.Exists(modelFile))
            throw new ArgumentException(modelFile is null ? "No model given, and no ../shared model beside the repository." : $"Model '{Path.GetFullPath(modelFile)}' not found.");
        if (labelsFile is null && shared is not null)
            labelsFile = Path.Combine(shared, "labels");
        return new ClassifyInputs(imageFolder, modelFile, labelsFile, work, generated: false, sharedPhotos);
    }

    /// <summary>
    /// Class names for a model with <paramref name="classes"/> outputs: the given file (a JSON array or one name per
    /// line), or from a ../shared labels folder the file matching 1001 (background first) or 1000 classes.
    /// </summary>
    public string[] LoadLabels(int classes)
    {
        string? file = LabelsFile;
        if (file is not null && Directory.Exists(file))
        {
            file = Path.Combine(file, classes == 1001 ? "imagenet_labels_1001_coral.txt" : "imagenet-simple-labels.json");
            if (!File.Exists(file)) file = null;
        }
        string[] names = file is null ? []
            : file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? JsonSerializer.Deserialize<string[]>(File.ReadAllText(file)) ?? []
            : File.ReadAllLines(file);
        // 1000 names for a 1001-output model: output 0 is "background".
        if (names.Length == classes - 1) names = ["background", .. names];
        return Enumerable.Range(0, classes).Select(i => i < names.Length ? names[i] : $"class {i}").ToArray();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(WorkFolder, recursive: true);
        }
        catch (IOException)
        {
            // A temporary folder left behind is harmless.
        }
    }

    private static string? FindSharedFolder()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "MLSparse.sln")))
                {
                    string shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
                    return File.Exists(Path.Combine(shared, DefaultModel)) ? shared : null;
                }
        return null;
    }

    /// <summary>A 256x256 picture of gradients and discs, different for each seed.</summary>
    internal static void WriteGeneratedImage(string path, int seed)
    {
        var random = new Random(seed);
        SKColor RandomColor() => new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
        using var bitmap = new SKBitmap(256, 256);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var background = new SKPaint
            {
                Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(256, 256), [RandomColor(), RandomColor()], SKShaderTileMode.Clamp),
            };
            canvas.DrawRect(0, 0, 256, 256, background);
            for (int i = 0; i < 6; i++)
            {
                using var disc = new SKPaint { Color = RandomColor(), IsAntialias = true };
                canvas.DrawCircle(random.Next(256), random.Next(256), random.Next(10, 70), disc);
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, png.ToArray());
    }
}
