namespace Microsoft.ML.Sparse.Tests;

public class SharedDataTests
{
    [Fact]
    public void RepositoryRootHoldsTheSolution() =>
        Assert.True(File.Exists(Path.Combine(SharedData.RepositoryRoot, "MLSparse.sln")));

    [Fact]
    public void SharedModelsAreFound() =>
        Assert.True(new FileInfo(SharedData.Require("models/mobilenet_v1_1.0_224.onnx")).Length > 1_000_000);
}
