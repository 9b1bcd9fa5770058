using Microsoft.ML.Sparse.Onnx.Synthetic;
using Microsoft.ML.Sparse.Tests.Onnx;
using static Microsoft.ML.Sparse.Tests.MLNet.MLNetTestData;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>
/// A model given by path is named by that path in load errors through every ML.NET entry point (the catalog overloads
/// and <see cref="SparseMobileNetOptions.ModelFile"/>), as through <see cref="SparseModel.Load(string, SparseModelOptions?, CancellationToken)"/>.
/// </summary>
public class ModelSourceNamingTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>Each way of giving ScoreSparseMobileNet a model file.</summary>
    public static TheoryData<string> EntryPoints => new() { "modelFile", "output, input, modelFile", "string[] overload", "options.ModelFile" };

    private static SparseMobileNetEstimator Score(string entryPoint, string path)
    {
        var transforms = new MLContext(seed: 1).Transforms;
        return entryPoint switch
        {
            "modelFile" => transforms.ScoreSparseMobileNet(path),
            "output, input, modelFile" => transforms.ScoreSparseMobileNet("output", "input", path),
            "string[] overload" => transforms.ScoreSparseMobileNet(["output"], ["input"], path),
            _ => transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelFile = path }),
        };
    }

    private static byte[] UnsupportedModel()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        return model.ToBytes(model.Builder.Node("MaxPool", [model.Conv("x", 4, 4, 1)], "pool1", OnnxGraphBuilder.Ints("kernel_shape", 2, 2)));
    }

    [Theory]
    [MemberData(nameof(EntryPoints))]
    public void CorruptAndUnsupportedFilesAreNamedByTheirPath(string entryPoint)
    {
        using var corrupt = new TemporaryFile(".onnx", TinyModel[..(TinyModel.Length / 2)]);
        var invalid = Assert.Throws<InvalidOnnxModelException>(() => Score(entryPoint, corrupt.Path));
        Assert.Equal(corrupt.Path, invalid.ModelSource);
        Assert.Contains($"'{corrupt.Path}'", invalid.Message);
        Assert.DoesNotContain("(bytes)", invalid.Message);

        using var unsupported = new TemporaryFile(".onnx", UnsupportedModel());
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => Score(entryPoint, unsupported.Path));
        Assert.Equal(unsupported.Path, error.ModelSource);
        Assert.Contains(unsupported.Path, error.Message);
        Assert.Equal("pool1", error.NodeName);
    }

    [Theory]
    [MemberData(nameof(EntryPoints))]
    public void AMissingFileIsNamedInFull(string entryPoint)
    {
        string missing = Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.onnx");
        var error = Assert.Throws<FileNotFoundException>(() => Score(entryPoint, missing));
        Assert.Equal(missing, error.FileName);
        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public void AWrongTensorNameOrInputColumnNamesTheModelFile()
    {
        using var file = TinyModelFile();
        var transforms = new MLContext(seed: 1).Transforms;
        var tensor = Assert.Throws<ArgumentException>(() => transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelFile = file.Path, InputTensorName = "pixels" }));
        Assert.Contains($"'{file.Path}'", tensor.Message);
        Assert.Contains("'pixels'", tensor.Message);

        var mlContext = new MLContext(seed: 1);
        var data = LoadPixels(mlContext, RandomImages(1, seed: 1), columnName: "input", type: new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.NumberDataViewType.Single, 5));
        var column = Assert.Throws<ArgumentOutOfRangeException>(() => mlContext.Transforms.ScoreSparseMobileNet(file.Path).Fit(data));
        Assert.Contains($"'{file.Path}'", column.Message);
    }

    [Fact]
    public void BytesAndStreamsAreNamedAsSuch()
    {
        byte[] corrupt = TinyModel[..(TinyModel.Length / 2)];
        var transforms = new MLContext(seed: 1).Transforms;
        Assert.Equal("(bytes)", Assert.Throws<InvalidOnnxModelException>(() => transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = corrupt })).ModelSource);
        Assert.Equal("(stream)", Assert.Throws<InvalidOnnxModelException>(() => transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelStream = new MemoryStream(corrupt) })).ModelSource);
        Assert.Equal("(bytes)", Assert.Throws<InvalidOnnxModelException>(() => SparseModel.Load(corrupt, null, Cancel)).ModelSource);
    }
}
