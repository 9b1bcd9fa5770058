using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Onnx.Synthetic;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// Broken and unsupported models fail at load with the documented exception type and a message naming the file and,
/// for unsupported graphs, the node and its operator.
/// </summary>
public sealed class BadInputTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private static byte[] ValidModel()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        return model.ToBytes(model.Builder.Node("Relu", [model.Conv("x", 4, 8, 3, pads: 1)]));
    }

    private static T LoadFromFile<T>(byte[] bytes) where T : OnnxModelException
    {
        using var folder = new TemporaryFolder();
        string path = Path.Combine(folder.Path, "broken.onnx");
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<T>(() => SparseModel.Load(path, null, Cancel));
        Assert.Equal(path, error.ModelSource);
        Assert.Contains(path, error.Message);
        return error;
    }

    [Fact]
    public void TruncatedFile_IsInvalid()
    {
        byte[] model = ValidModel();
        var error = LoadFromFile<InvalidOnnxModelException>(model[..(model.Length / 2)]);
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void RandomBytes_AreInvalid()
    {
        var bytes = new byte[4096];
        new Random(3).NextBytes(bytes);
        LoadFromFile<InvalidOnnxModelException>(bytes);
    }

    [Fact]
    public void AProtobufThatIsNotAModel_IsInvalid()
    {
        byte[] tensor = OnnxGraphBuilder.FloatTensor("t", [2, 3], [1, 2, 3, 4, 5, 6]).ToByteArray();
        var error = LoadFromFile<InvalidOnnxModelException>(tensor);
        Assert.Contains("ModelProto", error.Message);
    }

    [Fact]
    public void EmptyStream_IsInvalid()
    {
        var error = Assert.Throws<InvalidOnnxModelException>(() => SparseModel.Load(new MemoryStream(), null, Cancel));
        Assert.Equal("(stream)", error.ModelSource);
    }

    [Fact]
    public void UnsupportedOperator_NamesTheNodeAndTheSupportedList()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string pooled = model.Builder.Node("MaxPool", [model.Conv("x", 4, 4, 1)], "pool1", OnnxGraphBuilder.Ints("kernel_shape", 2, 2));
        var error = LoadFromFile<UnsupportedOnnxModelException>(model.ToBytes(pooled));
        Assert.Equal("pool1", error.NodeName);
        Assert.Equal("MaxPool", error.OpType);
        Assert.Contains("node 'pool1' (MaxPool)", error.Message);
        Assert.Contains("supported: Conv", error.Message);
    }

    [Theory]
    [InlineData("dilations")]
    [InlineData("group")]
    [InlineData("reflect pad")]
    [InlineData("transpose")]
    public void UnsupportedAttributes_NameTheNode(string what)
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        var b = model.Builder;
        string output = what switch
        {
            "dilations" => b.Node("Conv", ["x", model.Weights("w", [4, 4, 3, 3])], "bad", OnnxGraphBuilder.Ints("dilations", 2, 2)),
            "group" => b.Node("Conv", ["x", model.Weights("w", [4, 2, 3, 3])], "bad", OnnxGraphBuilder.Int("group", 2)),
            "reflect pad" => b.Node("Pad", ["x", b.Int64Initializer("pads", [8], 0, 0, 1, 1, 0, 0, 1, 1)], "bad", TinyOnnx.String("mode", "reflect")),
            _ => b.Node("Transpose", ["x"], "bad", OnnxGraphBuilder.Ints("perm", 0, 2, 3, 1)),
        };
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(model.ToBytes(output), null, Cancel));
        Assert.Equal("bad", error.NodeName);
        Assert.Contains("supported", error.Message);
    }

    [Fact]
    public void WrongInputRank_IsUnsupported_AndAWrongInputShapeOptionIsAnArgumentError()
    {
        var model = new TinyOnnx(13, 1, 16);
        byte[] bytes = model.ToBytes(model.Builder.Node("Relu", ["x"]));
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(bytes, null, Cancel));
        Assert.Contains("rank 2", error.Message);

        Assert.Throws<ArgumentException>(() => SparseModel.Load(ValidModel(), new SparseModelOptions { InputShape = [1, 4, 6] }, Cancel));
        Assert.Throws<ArgumentException>(() => SparseModel.Load(ValidModel(), new SparseModelOptions { InputShape = [1, 5, 6, 6] }, Cancel));
    }

    [Theory]
    [InlineData("missing.bin", "not found")]
    [InlineData("../outside.bin", "escapes the model's folder")]
    public void ExternalDataThatCannotBeRead_IsInvalid(string location, string expected)
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Conv("x", 4, 8, 3);
        TinyOnnx.MakeExternal(model.Builder.Graph.Initializer.Single(t => t.Dims.Count == 4), location, 0);
        var error = LoadFromFile<InvalidOnnxModelException>(model.ToBytes(output));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void ExternalData_FromBytes_IsInvalidWithTheReason()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Conv("x", 4, 8, 3);
        TinyOnnx.MakeExternal(model.Builder.Graph.Initializer.Single(t => t.Dims.Count == 4), "weights.bin", 0);
        var error = Assert.Throws<InvalidOnnxModelException>(() => SparseModel.Load(model.ToBytes(output), null, Cancel));
        Assert.Contains("loaded from a file path", error.Message);
    }

    [Theory]
    [InlineData(1L << 40)]
    [InlineData(1L << 20)]
    public void HugeDeclaredDims_FailBeforeAllocating(long dim)
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Conv("x", 4, 8, 3);
        var weights = model.Builder.Graph.Initializer.Single(t => t.Dims.Count == 4);
        weights.Dims[0] = dim;
        weights.Dims[1] = dim;
        var error = LoadFromFile<InvalidOnnxModelException>(model.ToBytes(output));
        Assert.Contains(weights.Name, error.Message);
    }

    [Fact]
    public void HugeSparseInitializer_FailsBeforeDensifying()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        var b = model.Builder;
        string weights = b.SparseFloatInitializer("w", [8, 4, 1, 1], Enumerable.Range(0, 32).Select(i => i % 3 == 0 ? 1f : 0f).ToArray());
        string output = b.Node("Conv", ["x", weights]);
        b.Graph.SparseInitializer[0].Dims[0] = 1L << 30;
        var error = LoadFromFile<InvalidOnnxModelException>(model.ToBytes(output));
        Assert.Contains("too large to densify", error.Message);
    }

    [Fact]
    public void DeclaredSizeLargerThanTheData_IsInvalid()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Conv("x", 4, 8, 3);
        model.Builder.Graph.Initializer.Single(t => t.Dims.Count == 4).Dims[0] = 9;
        var error = LoadFromFile<InvalidOnnxModelException>(model.ToBytes(output));
        Assert.Contains("raw_data", error.Message);
    }

    [Theory]
    [InlineData(6)]
    [InlineData(22)]
    public void OpsetOutsideTheSupportedRange_IsUnsupported(int opset)
    {
        var model = new TinyOnnx(opset, 1, 4, 6, 6);
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(model.ToBytes(model.Builder.Node("Relu", ["x"])), null, Cancel));
        Assert.Contains($"opset {opset}", error.Message);
        Assert.Contains("7 to 21", error.Message);
    }

    [Fact]
    public void CustomDomainOperator_IsUnsupported()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Builder.Node("FusedConv", ["x"], "custom");
        model.Builder.Graph.Node[^1].Domain = "com.microsoft";
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(model.ToBytes(output), null, Cancel));
        Assert.Equal("custom", error.NodeName);
        Assert.Contains("com.microsoft", error.Message);
    }

    [Fact]
    public void DanglingValueName_IsInvalid()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Builder.Node("Add", ["x", "nowhere"], "add");
        var error = Assert.Throws<InvalidOnnxModelException>(() => SparseModel.Load(model.ToBytes(output), null, Cancel));
        Assert.Contains("'nowhere'", error.Message);
    }

    [Fact]
    public void MissingFile_IsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => SparseModel.Load(Path.Combine(Path.GetTempPath(), Guid.NewGuid() + ".onnx"), null, Cancel));
    }
}
