namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>The real MobileNets in ../shared/models and their pruned copies (made once, cached under artifacts/).</summary>
internal static class BenchmarkModels
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>Where the real model named <paramref name="model"/> lives: ../shared/models beside the repository (it may be missing).</summary>
    public static string SharedModelPath(string model) => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "models", model + ".onnx"));

    /// <summary>Path of the model pruned to <paramref name="sparsity"/> (1x1 and classifier weights, uniform per layer); 0 is the original file.</summary>
    public static string Get(string model, double sparsity)
    {
        string original = SharedModelPath(model);
        if (!File.Exists(original))
            throw new FileNotFoundException($"Benchmarks need the real models in ../shared/models beside the repository; '{original}' is missing.", original);
        if (sparsity == 0) return original;

        string folder = Path.Combine(RepositoryRoot, "artifacts", "bench-models");
        Directory.CreateDirectory(folder);
        string pruned = Path.Combine(folder, $"{model}_sparsity{sparsity * 100:0}.onnx");
        if (!File.Exists(pruned) || File.GetLastWriteTimeUtc(pruned) < File.GetLastWriteTimeUtc(original))
        {
            string temporary = pruned + ".tmp";
            OnnxPruner.Prune(original, temporary, new PruningOptions { TargetSparsity = (float)sparsity });
            File.Move(temporary, pruned, overwrite: true);
        }
        return pruned;
    }

    /// <summary>A deterministic input image in the models' range (-1..1), NCHW.</summary>
    public static float[] Input(int length, int seed = 7)
    {
        var random = new Random(seed);
        var input = new float[length];
        for (int i = 0; i < input.Length; i++) input[i] = (float)(random.NextDouble() * 2 - 1);
        return input;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLSparse.sln"))) return dir.FullName;
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLSparse.sln"))) return dir.FullName;
        throw new InvalidOperationException("Run the benchmarks from inside the repository (MLSparse.sln not found).");
    }
}
