namespace Microsoft.ML.Sparse;

/// <summary>Options for importing an ONNX model into the sparse engine.</summary>
public sealed class SparseModelOptions
{
    /// <summary>Threads one inference uses. Default: all cores.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Minimum sparsity for the SpMM path of a 1x1 layer; see <see cref="SparseNetworkOptions.SparseThreshold"/>.</summary>
    public float SparseThreshold { get; set; } = SparseNetworkOptions.DefaultSparseThreshold;

    /// <summary>Widest SIMD width the kernels may use.</summary>
    public SimdWidth MaxSimdWidth { get; set; } = SimdWidth.Auto;

    /// <summary>Fixes the input's dynamic dimensions, NCHW including batch (e.g. [1, 3, 224, 224]); null takes the file's shape, with batch 1.</summary>
    public IReadOnlyList<int>? InputShape { get; set; }
}

/// <summary>
/// An ONNX MobileNet-family model imported into the sparse CHW engine. Thread-safe: share one instance and give each
/// concurrent caller its own <see cref="SparseWorkspace"/>.
/// </summary>
public sealed class SparseModel
{
    private SparseModel() { }

    /// <summary>Loads an ONNX file (with external data beside it, if it has any).</summary>
    public static SparseModel Load(string path, SparseModelOptions? options = null, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <summary>Loads an ONNX model from a stream.</summary>
    public static SparseModel Load(Stream stream, SparseModelOptions? options = null, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <summary>Loads an ONNX model from its bytes.</summary>
    public static SparseModel Load(ReadOnlyMemory<byte> bytes, SparseModelOptions? options = null, CancellationToken cancellationToken = default) => throw new NotImplementedException();

    /// <summary>Name of the graph input.</summary>
    public string InputName => throw new NotImplementedException();

    /// <summary>Name of the graph output.</summary>
    public string OutputName => throw new NotImplementedException();

    /// <summary>Input shape of one image, without batch (e.g. [3, 224, 224], or [224, 224, 3] for NHWC models).</summary>
    public IReadOnlyList<int> InputShape => throw new NotImplementedException();

    /// <summary>Output shape of one image, without batch (e.g. [1001]).</summary>
    public IReadOnlyList<int> OutputShape => throw new NotImplementedException();

    /// <summary>Floats per image in the input.</summary>
    public int InputLength => throw new NotImplementedException();

    /// <summary>Floats per image in the output.</summary>
    public int OutputLength => throw new NotImplementedException();

    /// <summary>The planned engine network.</summary>
    public SparseNetwork Network => throw new NotImplementedException();

    /// <summary>Workspace for one concurrent caller.</summary>
    public SparseWorkspace CreateWorkspace() => throw new NotImplementedException();

    /// <summary>Scores a batch: <paramref name="input"/> holds N images (N * InputLength floats), <paramref name="output"/> N * OutputLength.</summary>
    public void Run(ReadOnlySpan<float> input, Span<float> output, SparseWorkspace workspace) => throw new NotImplementedException();

    /// <summary>Layer-by-layer summary: shapes, sparsity, chosen kernel, dense vs sparse MACs.</summary>
    public string Describe() => throw new NotImplementedException();
}
