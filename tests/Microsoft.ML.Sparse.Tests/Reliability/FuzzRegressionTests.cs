using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Onnx.Synthetic;
using Microsoft.ML.Sparse.Tests.Onnx;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>Mutants the fuzzer found crashing the importer, reduced to the one edit that mattered.</summary>
public sealed class FuzzRegressionTests
{
    private static ModelProto TinyModel(SyntheticArchitecture architecture = SyntheticArchitecture.MobileNetV1) =>
        ModelProto.Parser.ParseFrom(SyntheticMobileNet.Create(new SyntheticMobileNetOptions
        {
            Architecture = architecture, WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, Seed = 1,
        }));

    private static T Load<T>(ModelProto model) where T : OnnxModelException
    {
        var error = Assert.Throws<T>(() => SparseModel.Load(model.ToByteArray(), null, TestContext.Current.CancellationToken));
        Assert.StartsWith("ONNX model '(bytes)': ", error.Message);
        return error;
    }

    [Theory]
    [InlineData(SyntheticArchitecture.MobileNetV3Small, "Relu")]
    [InlineData(SyntheticArchitecture.MobileNetV3Small, "HardSigmoid")]
    [InlineData(SyntheticArchitecture.MobileNetV1, "Clip")]
    [InlineData(SyntheticArchitecture.EfficientNetB0, "Sigmoid")]
    public void AnActivationWithoutInputs_IsInvalid(SyntheticArchitecture architecture, string opType)
    {
        // Was an IndexOutOfRangeException: the lowering read inputs[0] before checking the node had one.
        var model = TinyModel(architecture);
        var activation = model.Graph.Node.First(n => n.OpType == opType);
        activation.Input.Clear();
        var error = Load<InvalidOnnxModelException>(model);
        Assert.Contains("lacks its input 0", error.Message);
    }

    [Fact]
    public void ActivationsOverflowingInt32_AreUnsupported()
    {
        // A 12000x12000 input passes the input-size check, but its first 1x1 conv (64 x 6000 x 6000 floats) overflowed
        // int: the plan had negative tensor lengths and a negative arena instead of an error.
        byte[] model = SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Resolution = 12000, Classes = 10 });
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(model, new SparseModelOptions { Threads = 1 }, TestContext.Current.CancellationToken));
        Assert.StartsWith("ONNX model '(bytes)': ", error.Message);
        Assert.Contains("at most", error.Message);
    }

    [Fact]
    public void AFullConvolutionOverTooManyTaps_IsUnsupported()
    {
        // Was a NotSupportedException from the engine escaping Load: 256 channels x 3x3 taps exceed the direct kernel's limit.
        var model = new TinyOnnx(13, 1, 256, 6, 6);
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(model.ToBytes(model.Conv("x", 256, 8, 3, pads: 1)), null, TestContext.Current.CancellationToken));
        Assert.Contains("taps", error.Message);
    }

    [Theory]
    [InlineData(35)]
    [InlineData(-1)]
    public void ATransposePermOutsideTheRank_IsUnsupported(long axis)
    {
        // Was an IndexOutOfRangeException: the perm values indexed the dims before being range-checked.
        var model = ModelProto.Parser.ParseFrom(SyntheticMobileNet.Create(new SyntheticMobileNetOptions
        {
            Architecture = SyntheticArchitecture.MobileNetV3Small, WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, NhwcInput = true,
        }));
        var perm = model.Graph.Node.First(n => n.OpType == "Transpose").Attribute.First(a => a.Name == "perm");
        perm.Ints[1] = axis;
        var error = Load<UnsupportedOnnxModelException>(model);
        Assert.Contains("perm", error.Message);
    }

    [Theory]
    [InlineData("strides", int.MaxValue)]
    [InlineData("strides", 1L << 32)]
    [InlineData("pads", 1L << 32)]
    public void ConvStridesOrPadsBeyondInt_AreUnsupported(string attribute, long value)
    {
        // strides 2^31 - 1 on the stem crashed the process (AccessViolationException in the direct convolution: the row
        // arithmetic overflowed); 2^32 + small values were cast to int and wrapped silently.
        var model = TinyModel();
        var stem = model.Graph.Node.First(n => n.OpType == "Conv");
        var values = stem.Attribute.First(a => a.Name == attribute).Ints;
        values[0] = value;
        var error = Load<UnsupportedOnnxModelException>(model);
        Assert.Contains("out of range", error.Message);
    }

    [Fact]
    public void BuilderConvWithAStrideBeyondTheInput_ThrowsArgumentException()
    {
        var builder = new SparseNetworkBuilder(3, 8, 8);
        var error = Assert.Throws<ArgumentException>(() => builder.Conv(builder.Input, new float[4 * 3 * 9], [], 4, 3, 3, strideHeight: int.MaxValue, strideWidth: 1));
        Assert.Contains("stride", error.Message);
    }

    [Fact]
    public void APadBeyondInt_IsUnsupported()
    {
        // 2^32 + 1 was cast to int and padded by 1 row without a word.
        var model = new TinyOnnx(9, 1, 4, 6, 6);
        string padded = model.Builder.Node("Pad", ["x"], "pad1", OnnxGraphBuilder.Ints("pads", 0, 0, (1L << 32) + 1, 1, 0, 0, 1, 1));
        var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(model.ToBytes(model.Conv(padded, 4, 8, 3)), null, TestContext.Current.CancellationToken));
        Assert.Contains("pad1", error.Message);
    }

    [Fact]
    public void AConvStrideBeyondThePaddedInput_ScoresLikeTheLargestUsefulStride()
    {
        // Valid ONNX (output 1x1); the builder refuses such strides, so the importer clamps them to the padded size.
        float[] Score(long stride)
        {
            var model = TinyModel();
            var depthwise = model.Graph.Node.Where(n => n.OpType == "Conv").ElementAt(5);
            depthwise.Attribute.First(a => a.Name == "strides").Ints[0] = stride;
            var loaded = SparseModel.Load(model.ToByteArray(), new SparseModelOptions { Threads = 1 }, TestContext.Current.CancellationToken);
            using var workspace = loaded.CreateWorkspace();
            var input = new float[loaded.InputLength];
            for (int i = 0; i < input.Length; i++) input[i] = MathF.Sin(i);
            var scores = new float[loaded.OutputLength];
            loaded.Run(input, scores, workspace);
            return scores;
        }
        Assert.Equal(Score(1000), Score(20));
    }
}
