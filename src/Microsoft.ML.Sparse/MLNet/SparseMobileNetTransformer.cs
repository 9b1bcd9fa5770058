using System.Collections.Immutable;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Sparse;

// Lets ML.NET's ModelLoadContext find the loader of a saved SparseMobileNetTransformer by its loader signature.
[assembly: LoadableClass(typeof(SparseMobileNetTransformer), null, typeof(SignatureLoadModel),
    "Sparse MobileNet scorer", SparseMobileNetTransformer.LoaderSignature)]

namespace Microsoft.ML.Sparse;

/// <summary>
/// Scores an ONNX MobileNet-family model with the sparse CHW engine: adds a known-size <see cref="float"/> vector
/// column holding the model output of each row's input vector. Produced by <see cref="SparseMobileNetEstimator"/>
/// (see <see cref="SparseMobileNetCatalog"/>).
/// </summary>
/// <remarks>
/// Thread-safe and immutable: share one instance across threads. Every cursor and every mapped row (hence every
/// <see cref="PredictionEngine{TSrc, TDst}"/>) scores with its own <see cref="SparseWorkspace"/>, so concurrent
/// cursors and prediction engines never share scratch state. Saved by <c>mlContext.Model.Save</c> with the ONNX
/// model's bytes embedded, so a loaded pipeline does not depend on the original file.
/// <para>
/// Like ML.NET's <c>OnnxTransformer</c> it is <see cref="IDisposable"/>: it owns its <see cref="Model"/>, whose weights
/// live in native memory, and disposing the transformer (or the <see cref="TransformerChain{TLastTransformer}"/> holding
/// it) disposes the model at once. Afterwards <see cref="Transform"/> and <see cref="GetRowToRowMapper"/> throw
/// <see cref="ObjectDisposedException"/>, and so do cursors and prediction engines made before when they score a row.
/// </para>
/// </remarks>
public sealed class SparseMobileNetTransformer : ITransformer, IDisposable
{
    /// <summary>Loader signature written in the saved model's header (at most 24 characters).</summary>
    internal const string LoaderSignature = "SparseMobileNetScorer";

    // Saved-model format versions (ML.NET convention: 0xMMMMmmmm). Bump the written version on any format change and
    // keep reading the old ones for as long as they are listed in VerWeCanReadBack.
    private const uint FormatVersion1 = 0x00010001;

    /// <summary>What errors call a model loaded from a saved ML.NET model (the zip's path is not known here).</summary>
    private const string EmbeddedModelSource = "(embedded in a saved ML.NET model)";

    private readonly IHost _host;
    private readonly byte[] _onnxModel;
    private readonly IReadOnlyList<int>? _inputShapeOverride;
    private readonly string _modelSource;
    private readonly string? _inputTensorName, _outputTensorName;

    // modelSource: what errors call the model (the user's file path, or "(bytes)"/"(stream)").
    internal SparseMobileNetTransformer(IHostEnvironment environment, ReadOnlyMemory<byte> onnxModel, string modelSource, string? inputColumnName, string? outputColumnName,
        string? inputTensorName, string? outputTensorName, int threadsPerRow, float sparseThreshold, IReadOnlyList<int>? inputShape)
    {
        if (threadsPerRow < 1)
            throw new ArgumentOutOfRangeException(nameof(threadsPerRow), threadsPerRow, "ThreadsPerRow must be at least 1.");
        if (onnxModel.IsEmpty)
            throw new ArgumentException($"The ONNX model {Quoted(modelSource)} is empty.", nameof(onnxModel));

        _host = environment.Register(nameof(SparseMobileNetTransformer));
        _onnxModel = onnxModel.ToArray();
        _modelSource = modelSource;
        _inputShapeOverride = inputShape?.ToArray();
        _inputTensorName = inputTensorName;
        _outputTensorName = outputTensorName;
        ThreadsPerRow = threadsPerRow;
        SparseThreshold = sparseThreshold;
        Model = SparseModel.Load(_onnxModel, modelSource, new SparseModelOptions
        {
            Threads = threadsPerRow,
            SparseThreshold = sparseThreshold,
            InputShape = _inputShapeOverride,
        });

        try
        {
            CheckTensorName("input", inputTensorName, Model.InputName);
            CheckTensorName("output", outputTensorName, Model.OutputName);
        }
        catch
        {
            Model.Dispose();
            throw;
        }
        InputColumnName = string.IsNullOrEmpty(inputColumnName) ? Model.InputName : inputColumnName;
        OutputColumnName = string.IsNullOrEmpty(outputColumnName) ? Model.OutputName : outputColumnName;
        OutputType = new VectorDataViewType(NumberDataViewType.Single, Model.OutputShape.ToArray());
    }

    /// <summary>The imported model. Thread-safe. Owned by the transformer: disposed with it.</summary>
    public SparseModel Model { get; }

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Model.IsDisposed;

    /// <summary>
    /// Disposes <see cref="Model"/>, freeing its native memory now. Scoring afterwards, through this transformer or
    /// cursors and prediction engines made from it, throws <see cref="ObjectDisposedException"/>. Calling it again does nothing.
    /// </summary>
    public void Dispose() => Model.Dispose();

    /// <summary>A new transformer importing the same model with the same settings (the estimator's next Fit after a Dispose).</summary>
    internal SparseMobileNetTransformer Reimport() => new(_host, _onnxModel, _modelSource, InputColumnName, OutputColumnName,
        _inputTensorName, _outputTensorName, ThreadsPerRow, SparseThreshold, _inputShapeOverride);

    /// <summary>Column holding each row's input tensor: a known-size vector of <see cref="float"/> with <see cref="SparseModel.InputLength"/> values.</summary>
    public string InputColumnName { get; }

    /// <summary>Column added with each row's output tensor.</summary>
    public string OutputColumnName { get; }

    /// <summary>Engine threads scoring one row.</summary>
    public int ThreadsPerRow { get; }

    /// <summary>Minimum weight sparsity for a 1x1 layer to take the sparse path.</summary>
    public float SparseThreshold { get; }

    /// <summary>Type of the output column: a vector of <see cref="float"/> shaped like <see cref="SparseModel.OutputShape"/>.</summary>
    public VectorDataViewType OutputType { get; }

    /// <summary>Always true: each output row depends only on the same input row.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema plus the output column.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a float vector of the model's input size.</exception>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInputColumn(inputSchema);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(OutputColumnName, OutputType);
        return builder.ToSchema();
    }

    /// <summary>Lazily scores <paramref name="input"/>: rows are scored as cursors reach them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a float vector of the model's input size.</exception>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public IDataView Transform(IDataView input)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        ArgumentNullException.ThrowIfNull(input);
        return new SparseMobileNetDataView(this, input, GetOutputSchema(input.Schema), _host);
    }

    /// <summary>A mapper scoring single rows (used by <see cref="PredictionEngine{TSrc, TDst}"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a float vector of the model's input size.</exception>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new SparseMobileNetRowMapper(this, inputSchema, GetOutputSchema(inputSchema));
    }

    /// <summary>Checks that the input column exists and is a known-size float vector of <see cref="SparseModel.InputLength"/> values.</summary>
    internal void CheckInputColumn(DataViewSchema inputSchema)
    {
        var column = inputSchema.GetColumnOrNull(InputColumnName);
        if (column is null)
            throw InputColumnMismatch($"no such column (the schema has: {string.Join(", ", inputSchema.Select(c => $"'{c.Name}'"))})");
        var type = column.Value.Type;
        if (type is not VectorDataViewType { IsKnownSize: true } vector || vector.ItemType != NumberDataViewType.Single || vector.Size != Model.InputLength)
            throw InputColumnMismatch(type is VectorDataViewType { IsKnownSize: true } known ? $"{type} ({known.Size} values)" : $"{type}");
    }

    /// <summary>The schema-shape check: a <see cref="SchemaShape"/> carries no vector size, so only kind and item type are checked.</summary>
    internal void CheckInputColumn(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(InputColumnName, out var column))
            throw InputColumnMismatch($"no such column (the schema has: {string.Join(", ", inputSchema.Select(c => $"'{c.Name}'"))})");
        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Single)
            throw InputColumnMismatch(column.GetTypeString() ?? column.ItemType?.ToString() ?? "an unknown type");
    }

    /// <summary>The output column as a schema-shape column.</summary>
    internal SchemaShape.Column OutputSchemaShapeColumn =>
        new(OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, isKey: false);

    private ArgumentOutOfRangeException InputColumnMismatch(string actual) => new("inputSchema",
        $"Input column '{InputColumnName}' of ScoreSparseMobileNet: expected a known-size vector of Single with " +
        $"{Model.InputLength} values (input '{Model.InputName}' of model {Quoted(_modelSource)}, shape [{string.Join(", ", Model.InputShape)}]), but got {actual}.");

    private void CheckTensorName(string role, string? requested, string actual)
    {
        if (!string.IsNullOrEmpty(requested) && requested != actual)
            throw new ArgumentException($"The model {Quoted(_modelSource)} has no {role} named '{requested}'; its only {role} is '{actual}'.");
    }

    /// <summary>A path in quotes; "(bytes)" and "(stream)" as they are.</summary>
    private static string Quoted(string source) => source.StartsWith('(') ? source : $"'{source}'";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "SPMBNTSC",
        verWrittenCur: FormatVersion1,
        verReadableCur: FormatVersion1,
        verWeCanReadBack: FormatVersion1,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(SparseMobileNetTransformer).Assembly.FullName);

    // Format 1: input column, output column (string table), threads per row (int32), sparse threshold (float32),
    // input-shape override rank (int32, 0 = none) and dims (int32 each), ONNX length (int32) and bytes.
    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(InputColumnName);
        ctx.SaveNonEmptyString(OutputColumnName);
        var writer = ctx.Writer;
        writer.Write(ThreadsPerRow);
        writer.Write(SparseThreshold);
        writer.Write(_inputShapeOverride?.Count ?? 0);
        foreach (int dim in _inputShapeOverride ?? []) writer.Write(dim);
        writer.Write(_onnxModel.Length);
        writer.Write(_onnxModel);
    }

    // Found by ML.NET's ComponentCatalog through the LoadableClass attribute above.
    private static SparseMobileNetTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        string inputColumn = ctx.LoadNonEmptyString();
        string outputColumn = ctx.LoadNonEmptyString();
        var reader = ctx.Reader;
        int threadsPerRow = reader.ReadInt32();
        float sparseThreshold = reader.ReadSingle();
        int rank = reader.ReadInt32();
        if (rank is < 0 or > 8) throw new InvalidDataException($"Corrupt SparseMobileNet model: input-shape rank {rank}.");
        int[]? inputShape = rank == 0 ? null : new int[rank];
        for (int i = 0; i < rank; i++) inputShape![i] = reader.ReadInt32();
        int length = reader.ReadInt32();
        byte[] onnx = reader.ReadBytes(length);
        if (length <= 0 || onnx.Length != length)
            throw new InvalidDataException($"Corrupt SparseMobileNet model: ONNX model of {onnx.Length} bytes, header says {length}.");
        return new SparseMobileNetTransformer(env, onnx, EmbeddedModelSource, inputColumn, outputColumn, null, null, threadsPerRow, sparseThreshold, inputShape);
    }
}
