using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Onnx.Synthetic;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// Small hand-built graphs, one per exporter quirk the importer normalises: each is scored by the engine and by ONNX
/// Runtime on a random input, and the lowered graph is checked for the fusion the quirk should produce.
/// </summary>
public sealed class OnnxImportTests
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public void PadAndUnfoldedBatchNorm_FoldIntoTheConvolution()
    {
        var model = new TinyOnnx(13, 1, 4, 9, 9);
        string padded = model.Builder.Node("Pad", ["x", model.Builder.Int64Initializer("pads", [8], 0, 0, 1, 2, 0, 0, 1, 0)]);
        string conv = model.Conv(padded, 4, 6, 3, bias: false);
        string normalized = model.BatchNorm(conv, 6);
        var graph = model.AssertMatchesOnnxRuntime(model.Builder.Node("Relu", [normalized]));

        var layer = Assert.Single(graph.Layers);
        Assert.Equal(LayerKind.Conv, layer.Kind);
        Assert.Equal(new Padding(1, 2, 1, 0), layer.Padding);
        Assert.Equal(Activation.Relu, layer.Activation);
    }

    [Fact]
    public void BatchNormWithoutAProducer_BecomesAPerChannelAffine()
    {
        var model = new TinyOnnx(9, 1, 5, 6, 6);
        var graph = model.AssertMatchesOnnxRuntime(model.Builder.Node("Sigmoid", [model.BatchNorm("x", 5)]));

        var layer = Assert.Single(graph.Layers);
        Assert.Equal(LayerKind.Affine, layer.Kind);
        Assert.Equal(Activation.Sigmoid, layer.Activation);
    }

    [Theory]
    [InlineData("Sigmoid", ActivationKind.Swish)]
    [InlineData("HardSigmoid", ActivationKind.HardSwish)]
    public void GatedProducts_BecomeSwishAndHardSwish(string gate, ActivationKind expected)
    {
        var model = new TinyOnnx(13, 1, 8, 5, 5);
        string conv = model.Conv("x", 8, 16, 1);
        string gated = gate == "Sigmoid"
            ? model.Builder.Node("Sigmoid", [conv])
            : model.Builder.Node("HardSigmoid", [conv], null, OnnxGraphBuilder.Float("alpha", 1f / 6f), OnnxGraphBuilder.Float("beta", 0.5f));
        var graph = model.AssertMatchesOnnxRuntime(model.Builder.Node("Mul", [gated, conv]));

        var layer = Assert.Single(graph.Layers);
        Assert.True(layer.IsPointwise);
        Assert.Equal(expected, layer.Activation.Kind);
    }

    [Fact]
    public void SqueezeAndExcitation_ScalesEveryChannel()
    {
        var model = new TinyOnnx(13, 1, 8, 7, 7);
        string features = model.Conv("x", 8, 8, 3, pads: 1);
        string pooled = model.Builder.Node("GlobalAveragePool", [features]);
        string squeezed = model.Builder.Node("Relu", [model.Conv(pooled, 8, 4, 1)]);
        string excited = model.Builder.Node("HardSigmoid", [model.Conv(squeezed, 4, 8, 1)]);
        var graph = model.AssertMatchesOnnxRuntime(model.Builder.Node("Mul", [features, excited]));

        Assert.Equal([LayerKind.Conv, LayerKind.GlobalAveragePool, LayerKind.Conv, LayerKind.Conv, LayerKind.Multiply], graph.Layers.Select(l => l.Kind));
        Assert.Equal(ActivationKind.HardSigmoid, graph.Layers[3].Activation.Kind);
    }

    [Fact]
    public void ResidualAdd_FusesIntoThePointwiseConvolution()
    {
        var model = new TinyOnnx(13, 1, 8, 6, 6);
        string expanded = model.Builder.Node("Relu", [model.Conv("x", 8, 16, 1)]);
        string projected = model.Conv(expanded, 16, 8, 1);
        var graph = model.AssertMatchesOnnxRuntime(model.Builder.Node("Clip", [model.Builder.Node("Add", ["x", projected]), model.Scalar("lo", 0f), model.Scalar("hi", 6f)]));

        Assert.Equal(2, graph.Layers.Count);
        Assert.Equal("x", graph.Layers[1].Residual);
        Assert.Equal(Activation.Relu6, graph.Layers[1].Activation);
    }

    [Theory]
    [InlineData("SAME_UPPER", 1)]
    [InlineData("SAME_LOWER", 1)]
    [InlineData("VALID", 1)]
    [InlineData("SAME_UPPER", 6)]
    [InlineData("SAME_LOWER", 6)]
    public void AutoPad_MatchesOnnxRuntime(string autoPad, int group)
    {
        var model = new TinyOnnx(13, 1, 6, 10, 9);
        string conv = model.Conv("x", 6, 6, 3, group: group, strides: 2, autoPad: autoPad);
        model.AssertMatchesOnnxRuntime(conv);
    }

    [Theory]
    [InlineData("Gemm", false)]
    [InlineData("Gemm", true)]
    [InlineData("MatMulAdd", false)]
    [InlineData("ReduceMean", false)]
    public void Classifiers_MatchOnnxRuntime(string classifier, bool transB)
    {
        var model = new TinyOnnx(13, 1, 8, 4, 4);
        var b = model.Builder;
        string features = model.Conv("x", 8, 12, 1);
        string flat = classifier == "ReduceMean"
            ? b.Node("ReduceMean", [features], null, OnnxGraphBuilder.Ints("axes", 2, 3), OnnxGraphBuilder.Int("keepdims", 0))
            : b.Node("Flatten", [b.Node("GlobalAveragePool", [features])]);
        string logits = classifier == "MatMulAdd"
            ? b.Node("Add", [b.Node("MatMul", [flat, model.Weights("w", [12, 10])]), model.Weights("bias", [10])])
            : b.Node("Gemm", [flat, model.Weights("w", transB ? [10, 12] : [12, 10]), model.Weights("c", [1, 10])], null,
                OnnxGraphBuilder.Int("transB", transB ? 1 : 0), OnnxGraphBuilder.Float("alpha", 0.5f), OnnxGraphBuilder.Float("beta", 2f));
        var graph = model.AssertMatchesOnnxRuntime(b.Node("Softmax", [logits]));

        Assert.Equal(LayerKind.Gemm, graph.Layers[^2].Kind);
        Assert.Equal([10], SparseModel.Load(model.ToBytes(), null, Cancel).OutputShape);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(13)]
    public void ClipBounds_ComeFromAttributesOrInputs_AndConsecutiveClampsMerge(int opset)
    {
        var model = new TinyOnnx(opset, 1, 4, 5, 5);
        var b = model.Builder;
        string conv = model.Conv("x", 4, 4, 3, pads: 1);
        string clipped = opset < 11
            ? b.Node("Clip", [conv], null, OnnxGraphBuilder.Float("min", -1f), OnnxGraphBuilder.Float("max", 2f))
            : b.Node("Clip", [conv, model.Scalar("min", -1f), model.Scalar("max", 2f)]);
        var graph = model.AssertMatchesOnnxRuntime(b.Node("Relu", [clipped]));

        Assert.Equal(Activation.Clip(0f, 2f), Assert.Single(graph.Layers).Activation);
    }

    [Fact]
    public void TorchPruningMask_IsFoldedIntoTheWeights()
    {
        var model = new TinyOnnx(13, 1, 16, 4, 4);
        var b = model.Builder;
        var random = new Random(7);
        float[] mask = Enumerable.Range(0, 32 * 16).Select(_ => random.NextSingle() < 0.75f ? 0f : 1f).ToArray();
        string weight = b.Node("Mul", [model.Weights("weight_orig", [32, 16, 1, 1]), b.FloatInitializer("weight_mask", [32, 16, 1, 1], mask)]);
        string conv = b.Node("Conv", ["x", weight, model.Weights("bias", [32])]);
        var graph = model.AssertMatchesOnnxRuntime(conv);

        var layer = Assert.Single(graph.Layers);
        Assert.Equal(mask.Count(m => m == 0f), layer.Weights.Count(w => w == 0f));
    }

    [Fact]
    public void NhwcInput_IsTransposedAndReportedAsHwc()
    {
        var model = new TinyOnnx(13, 1, 7, 5, 3);
        string chw = model.Builder.Node("Transpose", ["x"], null, OnnxGraphBuilder.Ints("perm", 0, 3, 1, 2));
        model.AssertMatchesOnnxRuntime(model.Conv(chw, 3, 4, 3));

        var sparse = SparseModel.Load(model.ToBytes(), null, Cancel);
        Assert.Equal([7, 5, 3], sparse.InputShape);
        Assert.Contains("NHWC", sparse.Describe());
    }

    [Fact]
    public void DynamicSpatialDims_NeedTheInputShapeOption()
    {
        var model = new TinyOnnx(13, "N", 3, "height", "width");
        string output = model.Conv("x", 3, 4, 3, strides: 2);
        byte[] bytes = model.ToBytes(output);

        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(bytes, null, Cancel));
        Assert.Contains("InputShape", error.Message);
        model.InputDims = [2, 3, 11, 13];
        model.AssertMatchesOnnxRuntime(output, new SparseModelOptions { InputShape = [2, 3, 11, 13] });
    }

    [Fact]
    public void ExternalData_IsReadFromBesideTheModelFile()
    {
        using var folder = new TemporaryFolder();
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        string output = model.Conv("x", 4, 8, 3, pads: 1);
        var weights = model.Builder.Graph.Initializer.Single(t => t.Dims.Count == 4);
        byte[] prefix = [1, 2, 3, 4, 5, 6, 7, 8];
        File.WriteAllBytes(Path.Combine(folder.Path, "weights.bin"), [.. prefix, .. weights.RawData.ToByteArray()]);
        TinyOnnx.MakeExternal(weights, "weights.bin", prefix.Length);
        string path = Path.Combine(folder.Path, "model.onnx");
        File.WriteAllBytes(path, model.ToBytes(output));

        var sparse = SparseModel.Load(path, null, Cancel);
        float[] input = RealModelParityTests.RandomImage(sparse.InputLength, seed: 9, RealModelParityTests.ImagePreprocessing.Coral);
        using var ort = new OnnxRuntimeReference(path);
        var actual = new float[sparse.OutputLength];
        using var workspace = sparse.CreateWorkspace();
        sparse.Run(input, actual, workspace);
        RealModelParityTests.AssertParity(ort.Run(input, 1, 4, 6, 6), actual, "external weights", checkTopFive: false);
    }

    public static TheoryData<string> TensorEncodings => ["raw float", "float_data", "double_data", "float16 int32_data", "bfloat16 raw"];

    [Theory]
    [MemberData(nameof(TensorEncodings))]
    public void TensorEncodings_DecodeToTheSameValues(string encoding)
    {
        float[] values = [1.5f, -2.25f, 0f, 1024f, -0.125f, 3f];
        var tensor = new TensorProto { Name = "t" };
        tensor.Dims.AddRange([2, 3]);
        switch (encoding)
        {
            case "raw float": tensor = OnnxGraphBuilder.FloatTensor("t", [2, 3], values); break;
            case "float_data": tensor.DataType = (int)TensorProto.Types.DataType.Float; tensor.FloatData.AddRange(values); break;
            case "double_data": tensor.DataType = (int)TensorProto.Types.DataType.Double; tensor.DoubleData.AddRange(values.Select(v => (double)v)); break;
            case "float16 int32_data":
                tensor.DataType = (int)TensorProto.Types.DataType.Float16;
                tensor.Int32Data.AddRange(values.Select(v => (int)BitConverter.HalfToUInt16Bits((Half)v)));
                break;
            default:
                tensor.DataType = (int)TensorProto.Types.DataType.Bfloat16;
                tensor.RawData = ByteString.CopyFrom(values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(v) >> 16))).ToArray());
                break;
        }
        var decoded = AnyModelFile().ReadTensor(tensor);
        Assert.Equal([2L, 3L], decoded.Dims);
        Assert.Equal(values, decoded.Floats);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void IntegerTensors_DecodeFromTypedFieldsAndRawData(bool int64)
    {
        var type = int64 ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Int32;
        long[] values = [7, -1, 0, 1L << 20];
        var typed = new TensorProto { Name = "i", DataType = (int)type };
        typed.Dims.Add(4);
        if (type == TensorProto.Types.DataType.Int64) typed.Int64Data.AddRange(values);
        else typed.Int32Data.AddRange(values.Select(v => (int)v));
        var raw = new TensorProto { Name = "i", DataType = (int)type };
        raw.Dims.Add(4);
        raw.RawData = ByteString.CopyFrom(values.SelectMany(v => type == TensorProto.Types.DataType.Int64 ? BitConverter.GetBytes(v) : BitConverter.GetBytes((int)v)).ToArray());

        Assert.Equal(values, AnyModelFile().ReadTensor(typed).Longs);
        Assert.Equal(values, AnyModelFile().ReadTensor(raw).Longs);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SparseInitializers_Densify_FromLinearOrCoordinateIndices(bool coordinates)
    {
        // Dense [2, 3]: zeros except (0, 1) = 4 and (1, 2) = -5.
        var sparse = new SparseTensorProto { Values = OnnxGraphBuilder.FloatTensor("s", [2], [4f, -5f]) };
        sparse.Dims.AddRange([2, 3]);
        sparse.Indices = new TensorProto { Name = "s_indices", DataType = (int)TensorProto.Types.DataType.Int64 };
        if (coordinates)
        {
            sparse.Indices.Dims.AddRange([2, 2]);
            sparse.Indices.Int64Data.AddRange([0, 1, 1, 2]);
        }
        else
        {
            sparse.Indices.Dims.Add(2);
            sparse.Indices.Int64Data.AddRange([1, 5]);
        }
        Assert.Equal([0f, 4f, 0f, 0f, 0f, -5f], AnyModelFile().ReadSparseTensor(sparse).Floats!);

        sparse.Indices.Int64Data[^1] = 9;
        Assert.Throws<InvalidOnnxModelException>(() => AnyModelFile().ReadSparseTensor(sparse));
    }

    private static OnnxModelFile AnyModelFile()
    {
        var model = new TinyOnnx(13, 1, 1, 1, 1);
        return OnnxModelFile.Read(model.ToBytes(model.Builder.Node("Relu", ["x"])));
    }

    [Fact]
    public void LoadingHonoursCancellation()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        byte[] bytes = model.ToBytes(model.Conv("x", 4, 8, 3));
        Assert.ThrowsAny<OperationCanceledException>(() => SparseModel.Load(bytes, null, new CancellationToken(canceled: true)));
    }

    [Fact]
    public void Run_RejectsInputsThatAreNotWholeImages()
    {
        var model = new TinyOnnx(13, 1, 4, 6, 6);
        var sparse = SparseModel.Load(model.ToBytes(model.Conv("x", 4, 8, 1)), null, Cancel);
        using var workspace = sparse.CreateWorkspace();
        Assert.Throws<ArgumentException>(() => sparse.Run(new float[sparse.InputLength + 1], new float[sparse.OutputLength], workspace));
        Assert.Throws<ArgumentException>(() => sparse.Run(new float[2 * sparse.InputLength], new float[sparse.OutputLength], workspace));
    }
}

/// <summary>Builds a tiny ONNX model around one input "x" with seeded random weights, and checks it against ONNX Runtime.</summary>
internal sealed class TinyOnnx
{
    private readonly Random _random = new(1234);

    public TinyOnnx(int opset, params object[] inputDims)
    {
        Builder = new OnnxGraphBuilder("tiny", opset);
        Builder.Input("x", (int)TensorProto.Types.DataType.Float, inputDims);
        InputDims = inputDims.Select(d => d as int? ?? 1).ToArray();
    }

    public OnnxGraphBuilder Builder { get; }

    /// <summary>The concrete input dims (batch included) used for scoring.</summary>
    public int[] InputDims { get; set; }

    private string? _output;

    public byte[] ToBytes(string? output = null)
    {
        if (output is not null && _output is null)
        {
            _output = output;
            Builder.Graph.Output.Add(new ValueInfoProto
            {
                Name = output,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        }
        return Builder.ToModel(8, "tests").ToByteArray();
    }

    public string Weights(string stem, long[] dims)
    {
        long count = dims.Aggregate(1L, (a, b) => a * b);
        float scale = 1f / MathF.Sqrt(dims.Length > 1 ? count / dims[0] : 4);
        return Builder.FloatInitializer(stem, dims, Enumerable.Range(0, (int)count).Select(_ => scale * (2f * _random.NextSingle() - 1f)).ToArray());
    }

    public string Scalar(string stem, float value) => Builder.FloatInitializer(stem, [], [value]);

    public string Conv(string x, int inChannels, int outChannels, int kernel, bool bias = true, int group = 1, int strides = 1, int pads = 0, string? autoPad = null)
    {
        var attributes = new List<AttributeProto>
        {
            OnnxGraphBuilder.Ints("kernel_shape", kernel, kernel),
            OnnxGraphBuilder.Ints("strides", strides, strides),
            OnnxGraphBuilder.Int("group", group),
        };
        if (autoPad is null) attributes.Add(OnnxGraphBuilder.Ints("pads", pads, pads, pads, pads));
        else attributes.Add(String("auto_pad", autoPad));
        string[] inputs = bias
            ? [x, Weights("w", [outChannels, inChannels / group, kernel, kernel]), Weights("b", [outChannels])]
            : [x, Weights("w", [outChannels, inChannels / group, kernel, kernel])];
        return Builder.Node("Conv", inputs, null, [.. attributes]);
    }

    public string BatchNorm(string x, int channels)
    {
        string variance = Builder.FloatInitializer("var", [channels], Enumerable.Range(0, channels).Select(_ => 0.5f + _random.NextSingle()).ToArray());
        return Builder.Node("BatchNormalization", [x, Weights("gamma", [channels]), Weights("beta", [channels]), Weights("mean", [channels]), variance],
            null, OnnxGraphBuilder.Float("epsilon", 1e-3f));
    }

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>Moves a tensor's raw data to an external file reference.</summary>
    public static void MakeExternal(TensorProto tensor, string location, long offset)
    {
        long length = tensor.RawData.Length;
        tensor.ClearRawData();
        tensor.DataLocation = TensorProto.Types.DataLocation.External;
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    /// <summary>Scores the model ending at <paramref name="output"/> with the engine and ONNX Runtime; returns the lowered graph.</summary>
    public LoweredGraph AssertMatchesOnnxRuntime(string output, SparseModelOptions? options = null)
    {
        byte[] bytes = ToBytes(output);
        var sparse = SparseModel.Load(bytes, options, TestContext.Current.CancellationToken);
        int images = InputDims[0];
        float[] input = RealModelParityTests.RandomImage(images * sparse.InputLength, seed: 17, RealModelParityTests.ImagePreprocessing.Coral);
        var actual = new float[images * sparse.OutputLength];
        using (var workspace = sparse.CreateWorkspace()) sparse.Run(input, actual, workspace);
        using var ort = new OnnxRuntimeReference(bytes);
        RealModelParityTests.AssertParity(ort.Run(input, InputDims), actual, "tiny model", checkTopFive: false);
        return SparseModel.Lower(OnnxModelFile.Read(bytes), options?.InputShape, TestContext.Current.CancellationToken);
    }
}

/// <summary>A fresh folder under the temp directory, deleted on dispose.</summary>
internal sealed class TemporaryFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sparse-onnx-").FullName;

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
