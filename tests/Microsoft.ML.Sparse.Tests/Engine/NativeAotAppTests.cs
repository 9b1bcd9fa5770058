using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.ML.Sparse.Samples;

namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// The engine API published with Native AOT: samples/SparseMobileNet.Aot, which build/publish-aot.sh publishes to
/// artifacts/aot/ (.ci/run does it before the tests; trim and AOT warnings fail that publish). Each test runs the
/// executable in a fresh process and checks its first scores bit for bit against this process's JIT engine at the SIMD
/// width the AOT binary was compiled for. Without a published, up-to-date binary the tests fail under CI=true and skip
/// with the reason otherwise.
/// </summary>
public sealed class NativeAotAppTests
{
    [Fact]
    public void AotApp_ScoresAGeneratedModelAsTheJitEngineDoes()
    {
        using var file = new MLNet.MLNetTestData.TemporaryFile(".onnx", SyntheticMobileNet.Create(new SyntheticMobileNetOptions
        {
            Architecture = SyntheticArchitecture.MobileNetV2, WidthMultiplier = 0.5f, Resolution = 96, Classes = 50, PointwiseSparsity = 0.9f, Seed = 4,
        }));
        AssertSameScores(file.Path);
    }

    [Fact]
    public void AotApp_ScoresARealModelAsTheJitEngineDoes() => AssertSameScores(SharedData.Require("models/mobilenet_v1_1.0_224.onnx"));

    private static void AssertSameScores(string model)
    {
        string binary = RequireAotBinary();
        string scoresFile = Path.Combine(Path.GetTempPath(), $"aot-scores-{Guid.NewGuid():N}.bin");
        try
        {
            var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string argument in new[] { model, "--predictions", "3", "--scores", scoresFile }) info.ArgumentList.Add(argument);
            using var process = Process.Start(info)!;
            string stdout = process.StandardOutput.ReadToEnd(), stderr = process.StandardError.ReadToEnd();
            Assert.True(process.WaitForExit(120_000), "the AOT app did not finish within two minutes");
            Assert.True(process.ExitCode == 0, $"the AOT app failed (exit code {process.ExitCode}): {stderr}");
            // "detail=<first layer's kernel> (VectorN)": the width the AOT code was compiled for.
            string detail = stdout.Split('\n').Single(line => line.StartsWith("detail=", StringComparison.Ordinal));
            SimdWidth width = Enum.GetValues<SimdWidth>().Single(w => w != SimdWidth.Auto && detail.TrimEnd().EndsWith($"({w})", StringComparison.Ordinal));
            float[] aotScores = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(scoresFile)).ToArray();

            var jit = SparseModel.Load(model, new SparseModelOptions { Threads = 1, MaxSimdWidth = width }, TestContext.Current.CancellationToken);
            using var workspace = jit.CreateWorkspace();
            var scores = new float[jit.OutputLength];
            jit.Run(StartupReport.DeterministicImage(jit.InputLength), scores, workspace);
            Assert.Equal(scores.Length, aotScores.Length);
            Assert.All(scores, value => Assert.True(float.IsFinite(value)));
            Assert.Equal(Array.ConvertAll(scores, BitConverter.SingleToInt32Bits), Array.ConvertAll(aotScores, BitConverter.SingleToInt32Bits));
        }
        finally
        {
            File.Delete(scoresFile);
        }
    }

    /// <summary>
    /// The published executable, if it was built from the sources in this working tree (else it would test another
    /// engine): build/publish-aot.sh stores the hash of those sources beside it, computed as <see cref="SourcesHash"/> does.
    /// </summary>
    private static string RequireAotBinary()
    {
        string folder = Path.Combine(SharedData.RepositoryRoot, "artifacts", "aot");
        string binary = Path.Combine(folder, OperatingSystem.IsWindows() ? "SparseMobileNet.Aot.exe" : "SparseMobileNet.Aot");
        string stamp = Path.Combine(folder, "engine-sources.sha256");
        string? problem = !File.Exists(binary) ? $"the Native AOT sample is not published at {binary}"
            : !File.Exists(stamp) ? $"{stamp} is missing"
            : File.ReadAllText(stamp).Trim() != SourcesHash() ? $"{binary} was built from other engine sources than this working tree's"
            : null;
        if (problem is null) return binary;
        string reason = $"{problem}; run build/publish-aot.sh (needs clang and zlib1g-dev).";
        if (SharedData.IsCI) Assert.Fail(reason + " CI=true requires it (.ci/run publishes it).");
        Assert.Skip(reason);
        return binary;
    }

    /// <summary>What build/engine-sources-hash.sh prints: SHA-256 of the sha256sum listing of the engine's and the sample's sources.</summary>
    private static string SourcesHash()
    {
        string root = SharedData.RepositoryRoot;
        string[] extensions = [".cs", ".csproj", ".proto"];
        var files = new[] { "src/Microsoft.ML.Sparse", "samples/SparseMobileNet.Aot" }
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(root, folder), "*", SearchOption.AllDirectories))
            .Select(path => Path.GetRelativePath(root, path).Replace('\\', '/'))
            .Where(path => extensions.Contains(Path.GetExtension(path)) && !path.Contains("/bin/", StringComparison.Ordinal) && !path.Contains("/obj/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal);
        var listing = new System.Text.StringBuilder();
        foreach (string path in files)
            listing.Append(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(root, path))))).Append("  ").Append(path).Append('\n');
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(listing.ToString())));
    }
}
