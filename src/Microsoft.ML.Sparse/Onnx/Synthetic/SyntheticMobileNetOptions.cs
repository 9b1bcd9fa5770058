namespace Microsoft.ML.Sparse;

/// <summary>The network family <see cref="SyntheticMobileNet"/> builds.</summary>
public enum SyntheticArchitecture
{
    /// <summary>MobileNet v1: 3x3 stem, 13 depthwise-separable blocks, ReLU6.</summary>
    MobileNetV1,
    /// <summary>MobileNet v2: inverted residual bottlenecks with a linear projection and a residual Add, ReLU6.</summary>
    MobileNetV2,
    /// <summary>MobileNet v3 small: HardSwish, squeeze-and-excitation gated by HardSigmoid, 5x5 depthwise, hidden head layer.</summary>
    MobileNetV3Small,
    /// <summary>MobileNet v3 large: as v3 small with the large configuration.</summary>
    MobileNetV3Large,
    /// <summary>EfficientNet-B0: MBConv blocks with Swish as Mul(x, Sigmoid(x)), squeeze-and-excitation gated by Sigmoid, 5x5 depthwise.</summary>
    EfficientNetB0,
}

/// <summary>How the classifier layer is expressed.</summary>
public enum SyntheticClassifier
{
    /// <summary>Flatten, then Gemm with transB = 1 (PyTorch style).</summary>
    Gemm,
    /// <summary>Flatten, then MatMul with a [K, N] weight and Add of the bias (TensorFlow / ONNX zoo style).</summary>
    MatMulAdd,
    /// <summary>A 1x1 Conv on the pooled [N, C, 1, 1] tensor, then flatten (TF-Slim style).</summary>
    Conv1x1,
}

/// <summary>How the pooled tensor is flattened to [N, C].</summary>
public enum SyntheticFlatten
{
    /// <summary>A Flatten node with axis 1.</summary>
    Flatten,
    /// <summary>A Reshape to a constant shape [-1, C].</summary>
    ReshapeConstant,
    /// <summary>Shape, Gather(0), Unsqueeze, Concat with [-1], Reshape: what torch.flatten exports with a dynamic batch.</summary>
    ShapeGather,
}

/// <summary>Options of <see cref="SyntheticMobileNet.Create(SyntheticMobileNetOptions)"/>. The defaults give a MobileNet v1 1.0 at 224x224.</summary>
public sealed class SyntheticMobileNetOptions
{
    /// <summary>The network family.</summary>
    public SyntheticArchitecture Architecture { get; set; } = SyntheticArchitecture.MobileNetV1;

    /// <summary>Channel width multiplier (e.g. 0.25, 0.75, 1.0); channels are rounded to multiples of 8.</summary>
    public float WidthMultiplier { get; set; } = 1f;

    /// <summary>Input height and width; a multiple of 32 keeps every stride-2 stage even.</summary>
    public int Resolution { get; set; } = 224;

    /// <summary>Number of output classes.</summary>
    public int Classes { get; set; } = 1000;

    /// <summary>Default-domain opset, 7 to 21. Below 11, Clip takes min/max as attributes (else as inputs); below 13,
    /// Unsqueeze takes axes as an attribute; from 14, v3's HardSwish is one node (else Mul(x, HardSigmoid(x))).</summary>
    public int Opset { get; set; } = 13;

    /// <summary>Leaves BatchNormalization nodes after bias-less convolutions instead of folding them into the weights.</summary>
    public bool UnfoldedBatchNorm { get; set; }

    /// <summary>Takes an NHWC input [N, H, W, 3] followed by Transpose(perm 0,3,1,2), as TensorFlow converters emit.</summary>
    public bool NhwcInput { get; set; }

    /// <summary>Stores 1x1 convolution weights as COO sparse_initializer tensors (linear int64 indices).</summary>
    public bool SparseInitializers { get; set; }

    /// <summary>Routes every weight through an Identity node, as some TensorFlow converters do.</summary>
    public bool WeightsThroughIdentity { get; set; }

    /// <summary>Names the batch dimension "N" instead of fixing it to 1.</summary>
    public bool DynamicBatch { get; set; }

    /// <summary>How the pooled features are flattened.</summary>
    public SyntheticFlatten Flatten { get; set; } = SyntheticFlatten.Flatten;

    /// <summary>How the classifier is expressed.</summary>
    public SyntheticClassifier Classifier { get; set; } = SyntheticClassifier.Gemm;

    /// <summary>Ends with Softmax over the classes (else the output is the logits).</summary>
    public bool Softmax { get; set; } = true;

    /// <summary>Fraction of each 1x1 convolution's weights set to exactly zero, at random positions (0 to 1).</summary>
    public float PointwiseSparsity { get; set; }

    /// <summary>Seed of the weight generator; the same options give the same bytes.</summary>
    public int Seed { get; set; }

    /// <summary>Name of the graph input.</summary>
    public string InputName { get; set; } = "input";

    /// <summary>Name of the graph output.</summary>
    public string OutputName { get; set; } = "output";
}
