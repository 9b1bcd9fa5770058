using Microsoft.ML.Sparse;

namespace Microsoft.ML.Sparse.Fuzz;

/// <summary>
/// Seeds: small generated models of every architecture and graph variant the importer handles (the real files of
/// ../shared are 4-17 MB, beyond AFL's 1 MiB input limit; these are the same graphs at width 0.25 and 32x32).
/// </summary>
internal static class SeedCorpus
{
    public static IEnumerable<(string Name, byte[] Bytes)> Create()
    {
        SyntheticMobileNetOptions Small(SyntheticArchitecture architecture) => new()
        {
            Architecture = architecture, WidthMultiplier = 0.1f, Resolution = 32, Classes = 10, Seed = 1,
        };
        yield return ("v1.onnx", SyntheticMobileNet.Create(Small(SyntheticArchitecture.MobileNetV1)));
        var sparse = Small(SyntheticArchitecture.MobileNetV1);
        sparse.PointwiseSparsity = 0.8f;
        yield return ("v1_sparse80.onnx", SyntheticMobileNet.Create(sparse));
        var opset9 = Small(SyntheticArchitecture.MobileNetV1);
        opset9.Opset = 9;
        opset9.UnfoldedBatchNorm = true;
        opset9.WeightsThroughIdentity = true;
        yield return ("v1_opset9_batchnorm.onnx", SyntheticMobileNet.Create(opset9));
        var v2 = Small(SyntheticArchitecture.MobileNetV2);
        v2.DynamicBatch = true;
        v2.Flatten = SyntheticFlatten.ShapeGather;
        yield return ("v2_dynamic_batch.onnx", SyntheticMobileNet.Create(v2));
        var v3 = Small(SyntheticArchitecture.MobileNetV3Small);
        v3.NhwcInput = true;
        v3.Classifier = SyntheticClassifier.Conv1x1;
        yield return ("v3_small_nhwc.onnx", SyntheticMobileNet.Create(v3));
        var efficient = Small(SyntheticArchitecture.EfficientNetB0);
        efficient.SparseInitializers = true;
        yield return ("efficientnet_b0_sparse_initializers.onnx", SyntheticMobileNet.Create(efficient));
        var large = Small(SyntheticArchitecture.MobileNetV3Large);
        large.Opset = 18;
        large.Classifier = SyntheticClassifier.MatMulAdd;
        yield return ("v3_large_opset18_matmul.onnx", SyntheticMobileNet.Create(large));
    }
}
