using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;

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
        var error = Assert.Throws<T>(() => SparseModel.Load(model.ToByteArray()));
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
}
