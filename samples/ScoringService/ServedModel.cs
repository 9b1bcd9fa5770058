using System.Text.Json;
using Microsoft.ML.Sparse;

namespace ScoringService;

/// <summary>
/// The file the service scores and its class names: the configured model (or ../shared's MobileNet v1 1.0/224, or a
/// generated MobileNet v1 when there is no ../shared), pruned by <see cref="OnnxPruner"/> into a temporary file that is
/// deleted on dispose, as the SparseMobileNet sample does.
/// </summary>
internal sealed class ServedModel : IDisposable
{
    private const string SharedModel = "models/mobilenet_v1_1.0_224.onnx";
    private readonly string _workFolder;

    private ServedModel(string source, string file, string[] labels, PruningReport? pruning, bool generated, string workFolder)
    {
        Source = source;
        File = file;
        Labels = labels;
        Pruning = pruning;
        Generated = generated;
        _workFolder = workFolder;
    }

    /// <summary>The model as given (before pruning).</summary>
    public string Source { get; }

    /// <summary>The file both scorers load (the pruned copy when pruning).</summary>
    public string File { get; }

    public string[] Labels { get; }

    public PruningReport? Pruning { get; }

    /// <summary>A generated model with random weights (no ../shared): labels mean nothing.</summary>
    public bool Generated { get; }

    public static ServedModel Prepare(ScoringServiceOptions options)
    {
        string work = Directory.CreateTempSubdirectory("scoring-service-").FullName;
        try
        {
            string? shared = FindSharedFolder();
            string? source = options.Model ?? (shared is null ? null : Path.Combine(shared, SharedModel));
            bool generated = source is null;
            if (source is null)
            {
                source = Path.Combine(work, "generated_mobilenet_v1.onnx");
                System.IO.File.WriteAllBytes(source, SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Seed = 1 }));
            }
            else if (!System.IO.File.Exists(source))
            {
                throw new FileNotFoundException($"Model '{source}' not found.", source);
            }

            string file = source;
            PruningReport? report = null;
            if (options.Sparsity > 0)
            {
                file = Path.Combine(work, "pruned.onnx");
                report = OnnxPruner.Prune(source, file, new PruningOptions { TargetSparsity = options.Sparsity });
            }
            // ImageNet's names only for the default model: another model's classes are its own.
            string? labels = options.Labels ?? (options.Model is null && shared is not null ? Path.Combine(shared, "labels") : null);
            int classes = SparseModel.Load(file, new SparseModelOptions { Threads = 1 }).OutputLength;
            return new ServedModel(source, file, LoadLabels(labels, classes), report, generated, work);
        }
        catch
        {
            Directory.Delete(work, recursive: true);
            throw;
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_workFolder, recursive: true);
        }
        catch (IOException)
        {
            // A temporary folder left behind is harmless.
        }
    }

    /// <summary>
    /// Names for <paramref name="classes"/> outputs from a JSON array or a one-name-per-line file, or from a folder
    /// holding ../shared's two label files (the 1001-name one for 1001 outputs); "class i" for any missing.
    /// </summary>
    private static string[] LoadLabels(string? file, int classes)
    {
        if (file is not null && Directory.Exists(file))
            file = Path.Combine(file, classes == 1001 ? "imagenet_labels_1001_coral.txt" : "imagenet-simple-labels.json");
        string[] names = file is null || !System.IO.File.Exists(file) ? []
            : file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? JsonSerializer.Deserialize<string[]>(System.IO.File.ReadAllText(file)) ?? []
            : System.IO.File.ReadAllLines(file);
        if (names.Length == classes - 1) names = ["background", .. names];
        return Enumerable.Range(0, classes).Select(i => i < names.Length ? names[i] : $"class {i}").ToArray();
    }

    /// <summary>../shared beside the repository (found from the working folder or the binaries upwards), if it holds the default model.</summary>
    private static string? FindSharedFolder()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (System.IO.File.Exists(Path.Combine(dir.FullName, "MLSparse.sln")))
                {
                    string shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
                    return System.IO.File.Exists(Path.Combine(shared, SharedModel)) ? shared : null;
                }
        return null;
    }
}
