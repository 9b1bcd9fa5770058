namespace Microsoft.ML.Sparse.Tests;

/// <summary>
/// Finds the real models, photos and labels in <c>../shared</c> beside the repository root.
/// A missing file fails the test under CI=true and skips it, with the reason, otherwise.
/// </summary>
internal static class SharedData
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string Root => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));

    public static bool IsCI => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Full path of a file under ../shared (e.g. "models/mobilenet_v1_1.0_224.onnx"), or a skip/failure when it is missing.</summary>
    public static string Require(string relativePath)
    {
        string path = Path.Combine(Root, relativePath);
        if (File.Exists(path)) return path;
        string reason = $"Shared test data '{relativePath}' not found at {path}.";
        if (IsCI) Assert.Fail(reason + " CI=true requires ../shared beside the repository.");
        Assert.Skip(reason);
        return path;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MLSparse.sln"))) return dir.FullName;
        throw new InvalidOperationException($"MLSparse.sln not found above {AppContext.BaseDirectory}.");
    }
}
