namespace Microsoft.ML.Sparse;

/// <summary>
/// Options of <see cref="SparseMobileNetCatalog.ScoreSparseMobileNet(TransformsCatalog, SparseMobileNetOptions)"/>.
/// Set exactly one model source: <see cref="ModelFile"/>, <see cref="ModelBytes"/> or <see cref="ModelStream"/>.
/// </summary>
public sealed class SparseMobileNetOptions
{
    /// <summary>Path of the ONNX model file.</summary>
    public string? ModelFile { get; set; }

    /// <summary>The ONNX model's bytes.</summary>
    public ReadOnlyMemory<byte>? ModelBytes { get; set; }

    /// <summary>A stream holding the ONNX model; read to its end when the estimator is created, and not disposed.</summary>
    public Stream? ModelStream { get; set; }

    /// <summary>Column holding each image's input tensor (a known-size vector of <see cref="float"/>); null names it after the graph input.</summary>
    public string? InputColumnName { get; set; }

    /// <summary>Column receiving each image's output tensor; null names it after the graph output.</summary>
    public string? OutputColumnName { get; set; }

    /// <summary>
    /// Graph input that <see cref="InputColumnName"/> feeds; null takes the graph's only input. When set it must be the
    /// graph input's name (it documents and checks the column-to-tensor binding).
    /// </summary>
    public string? InputTensorName { get; set; }

    /// <summary>Graph output that fills <see cref="OutputColumnName"/>; null takes the graph's only output, otherwise it must match it.</summary>
    public string? OutputTensorName { get; set; }

    /// <summary>
    /// Engine threads scoring one row. The default 1 suits parallelism across rows (one engine per cursor of
    /// <see cref="IDataView.GetRowCursorSet"/>, or per <see cref="PredictionEngine{TSrc, TDst}"/>); see docs/mlnet.md.
    /// </summary>
    public int ThreadsPerRow { get; set; } = 1;

    /// <summary>Minimum weight sparsity for a 1x1 layer to take the sparse (SpMM) path; see <see cref="SparseNetworkOptions.SparseThreshold"/>.</summary>
    public float SparseThreshold { get; set; } = SparseNetworkOptions.DefaultSparseThreshold;

    /// <summary>Fixes the model input's dynamic dimensions, NCHW with batch 1 (e.g. [1, 3, 224, 224]); null takes the file's shape.</summary>
    public IReadOnlyList<int>? InputShape { get; set; }
}
