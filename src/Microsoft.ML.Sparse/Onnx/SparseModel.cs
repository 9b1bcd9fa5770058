using System.Globalization;
using Microsoft.ML.Sparse.Onnx;

namespace Microsoft.ML.Sparse;

/// <summary>Options for importing an ONNX model into the sparse engine.</summary>
public sealed class SparseModelOptions
{
    /// <summary>Threads one inference uses. Default: all cores. See <see cref="SparseNetworkOptions.Threads"/> for how results depend on it.</summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Minimum sparsity for the SpMM path of a 1x1 layer; see <see cref="SparseNetworkOptions.SparseThreshold"/>.</summary>
    public float SparseThreshold { get; set; } = SparseNetworkOptions.DefaultSparseThreshold;

    /// <summary>Widest SIMD width the kernels may use.</summary>
    public SimdWidth MaxSimdWidth { get; set; } = SimdWidth.Auto;

    /// <summary>Fixes the input's dynamic dimensions, NCHW including batch (e.g. [1, 3, 224, 224]); null takes the file's shape, with batch 1.</summary>
    /// <remarks>For an NHWC model (input followed by Transpose [0,3,1,2]) the dims are in the file's NHWC order. The batch entry is ignored: <see cref="SparseModel.Run"/> takes any number of images.</remarks>
    public IReadOnlyList<int>? InputShape { get; set; }

    /// <summary>
    /// Runs one inference on a zero image at the end of the load, so the kernels the plan uses are compiled (at full
    /// optimization) before the first prediction instead of during it (under Native AOT, where nothing is compiled at run
    /// time, it still takes the first touch of the code and of fresh memory out of the first prediction). Default: true. It
    /// costs one inference at load; with one thread its workspace is the first <see cref="SparseModel.CreateWorkspace"/> returns.
    /// Plans whose workspace exceeds 16 MiB (large images) are not warmed up. See docs/design.md, "Warm-up".
    /// </summary>
    public bool WarmUp { get; set; } = true;
}

/// <summary>
/// An ONNX MobileNet-family model imported into the sparse CHW engine. Thread-safe: share one instance and give each
/// concurrent caller its own <see cref="SparseWorkspace"/>.
/// </summary>
/// <remarks>
/// Loading throws <see cref="InvalidOnnxModelException"/> for corrupt or inconsistent files and
/// <see cref="UnsupportedOnnxModelException"/> for valid models the engine cannot run (both derive from
/// <see cref="OnnxModelException"/>); docs/onnx-support.md lists the supported operators.
/// The weights live in native memory: dispose the model (<c>using var model = SparseModel.Load(...)</c>) to free it at
/// once rather than at a later garbage collection. After <see cref="Dispose"/>, <see cref="Run"/> and
/// <see cref="CreateWorkspace"/> throw <see cref="ObjectDisposedException"/>, also with workspaces made before; inferences
/// running at that moment finish first. Shapes, names and <see cref="Describe"/> stay available.
/// </remarks>
public sealed class SparseModel : IDisposable
{
    /// <summary>The first lines of <see cref="Describe"/>; the parsed file and the lowered graph are not kept (only the plan is).</summary>
    private readonly string _header;

    private SparseModel(OnnxModelFile file, LoweredGraph graph, SparseNetwork network)
    {
        Network = network;
        InputName = graph.InputName;
        OutputName = graph.OutputName;
        InputLength = graph.InputShape.Length;
        OutputLength = graph.OutputShape.Length;
        var input = graph.InputShape;
        InputShape = graph.InputIsHwc ? [input.Height, input.Width, input.Channels] : [input.Channels, input.Height, input.Width];
        var output = graph.OutputShape;
        OutputShape = output.Flat ? [output.Length] : [output.Channels, output.Height, output.Width];
        var model = file.Model;
        _header = string.Create(CultureInfo.InvariantCulture,
                $"Model: {file.Source} (graph '{model.Graph.Name}', producer {model.ProducerName} {model.ProducerVersion}, IR {model.IrVersion}, opset {file.Opset}){Environment.NewLine}")
            + $"Input: '{InputName}' [N,{string.Join(",", InputShape)}] {(graph.InputIsHwc ? "NHWC" : "NCHW")}; output: '{OutputName}' [N,{string.Join(",", OutputShape)}]{Environment.NewLine}";
    }

    /// <summary>Loads an ONNX file (with external data beside it, if it has any).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidOnnxModelException">The file is corrupt, truncated, not a model, or internally inconsistent.</exception>
    /// <exception cref="UnsupportedOnnxModelException">The model uses an operator, attribute or input layout the engine does not support.</exception>
    public static SparseModel Load(string path, SparseModelOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Import(OnnxModelFile.Read(path, splitWeights: true), options, cancellationToken);
    }

    /// <summary>Loads an ONNX model from a stream (external tensor data cannot be resolved and is rejected).</summary>
    /// <exception cref="InvalidOnnxModelException">The bytes are corrupt, truncated, not a model, or internally inconsistent.</exception>
    /// <exception cref="UnsupportedOnnxModelException">The model uses an operator, attribute or input layout the engine does not support.</exception>
    public static SparseModel Load(Stream stream, SparseModelOptions? options = null, CancellationToken cancellationToken = default) =>
        Import(OnnxModelFile.Read(stream, splitWeights: true), options, cancellationToken);

    /// <summary>Loads an ONNX model from its bytes (external tensor data cannot be resolved and is rejected).</summary>
    /// <exception cref="InvalidOnnxModelException">The bytes are corrupt, truncated, not a model, or internally inconsistent.</exception>
    /// <exception cref="UnsupportedOnnxModelException">The model uses an operator, attribute or input layout the engine does not support.</exception>
    public static SparseModel Load(ReadOnlyMemory<byte> bytes, SparseModelOptions? options = null, CancellationToken cancellationToken = default) =>
        Import(OnnxModelFile.Read(bytes, splitWeights: true), options, cancellationToken);

    /// <summary>Loads from bytes read from <paramref name="source"/> (the user's file path), which errors name instead of "(bytes)".</summary>
    internal static SparseModel Load(ReadOnlyMemory<byte> bytes, string source, SparseModelOptions? options, CancellationToken cancellationToken = default) =>
        Import(OnnxModelFile.Read(bytes, source, splitWeights: true), options, cancellationToken);

    /// <summary>Reads, lowers and fuses the graph without planning it (tests check this stage against a reference).</summary>
    internal static LoweredGraph Lower(OnnxModelFile file, IReadOnlyList<int>? inputShape, CancellationToken cancellationToken)
    {
        var graph = GraphLowering.Lower(file, inputShape, cancellationToken);
        LayerFusion.Fuse(graph);
        return graph;
    }

    private static SparseModel Import(OnnxModelFile file, SparseModelOptions? options, CancellationToken cancellationToken)
    {
        options ??= new SparseModelOptions();
        // Warmed up once Plan has returned: the lowered graph and its dense weights are garbage by then.
        SparseModel model = Plan(file, options, cancellationToken);
        // The dense weights decoded from the file (as many bytes as the file, 17 MB for MobileNet v1) are garbage now that
        // the plan holds its own formats. For a large model a full collection hands their pages back to the OS now rather
        // than whenever the GC next runs, so what a loaded model adds to the process is what it keeps; a background one,
        // which runs beside the warm-up (a blocking one added 12-15 ms to load on the development machine).
        if (file.ByteLength >= CollectAfterLoadBytes) GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: false);
        if (options.WarmUp) model.Network.WarmUp();
        return model;
    }

    /// <summary>Models from this size up are followed by a collection at load (small models leave little garbage).</summary>
    private const long CollectAfterLoadBytes = 4 << 20;

    private static SparseModel Plan(OnnxModelFile file, SparseModelOptions options, CancellationToken cancellationToken)
    {
        var graph = Lower(file, options.InputShape, cancellationToken);
        var networkOptions = new SparseNetworkOptions
        {
            Threads = options.Threads,
            SparseThreshold = options.SparseThreshold,
            MaxSimdWidth = options.MaxSimdWidth,
        };
        SparseNetwork network;
        try
        {
            network = NetworkEmitter.Emit(graph, networkOptions, cancellationToken);
        }
        catch (NotSupportedException e)
        {
            // Engine limits (tensor and arena sizes, direct-conv taps) reached by a model the lowering accepted.
            throw new UnsupportedOnnxModelException(file.Source, null, null, e.Message);
        }
        return new SparseModel(file, graph, network);
    }

    /// <summary>Name of the graph input.</summary>
    public string InputName { get; }

    /// <summary>Name of the graph output.</summary>
    public string OutputName { get; }

    /// <summary>Input shape of one image, without batch (e.g. [3, 224, 224], or [224, 224, 3] for NHWC models).</summary>
    public IReadOnlyList<int> InputShape { get; }

    /// <summary>Output shape of one image, without batch (e.g. [1001]).</summary>
    public IReadOnlyList<int> OutputShape { get; }

    /// <summary>Floats per image in the input.</summary>
    public int InputLength { get; }

    /// <summary>Floats per image in the output.</summary>
    public int OutputLength { get; }

    /// <summary>The planned engine network.</summary>
    public SparseNetwork Network { get; }

    /// <summary>Workspace for one concurrent caller.</summary>
    /// <exception cref="ObjectDisposedException">The model was disposed.</exception>
    public SparseWorkspace CreateWorkspace()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Network.CreateWorkspace();
    }

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Network.IsDisposed;

    /// <summary>Frees the model's native memory now (see the remarks on <see cref="SparseModel"/>). Calling it again does nothing.</summary>
    public void Dispose() => Network.Dispose();

    /// <summary>Scores a batch: <paramref name="input"/> holds N images (N * InputLength floats), <paramref name="output"/> N * OutputLength.</summary>
    /// <exception cref="ArgumentException">The spans do not hold the same whole number of images.</exception>
    /// <exception cref="ObjectDisposedException">The model or the workspace was disposed.</exception>
    public void Run(ReadOnlySpan<float> input, Span<float> output, SparseWorkspace workspace)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        ArgumentNullException.ThrowIfNull(workspace);
        int images = input.Length / InputLength;
        if (input.Length == 0 || input.Length % InputLength != 0)
            throw new ArgumentException($"The input holds {input.Length} floats, not a positive multiple of {InputLength} (one image of [{string.Join(",", InputShape)}]).", nameof(input));
        if (output.Length != images * OutputLength)
            throw new ArgumentException($"The output holds {output.Length} floats; {images} image(s) need {images * OutputLength}.", nameof(output));
        for (int i = 0; i < images; i++)
            Network.Run(input.Slice(i * InputLength, InputLength), output.Slice(i * OutputLength, OutputLength), workspace);
    }

    /// <summary>Layer-by-layer summary: shapes, sparsity, chosen kernel, dense vs sparse MACs.</summary>
    public string Describe() => _header + Network.Describe();
}
