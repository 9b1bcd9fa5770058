using System.Diagnostics.CodeAnalysis;
using Microsoft.ML.Sparse;

namespace Microsoft.ML;

/// <summary>
/// <c>mlContext.Transforms.ScoreSparseMobileNet(...)</c>: a drop-in for <c>ApplyOnnxModel</c> that scores pruned
/// MobileNet-family ONNX models with the sparse CHW engine.
/// </summary>
/// <remarks>
/// ML.NET builds pipelines and data views with reflection and run-time code generation, so this face of the library
/// is for JIT apps only; trimmed and Native AOT apps use <see cref="SparseModel"/> directly (docs/design.md, "Native AOT").
/// </remarks>
public static class SparseMobileNetCatalog
{
    private const string NotTrimmable = "ML.NET uses reflection and run-time code generation, which trimming and Native AOT do not support; use SparseModel without ML.NET there.";
    /// <summary>Scores the model with column names taken from the graph's input and output names, as <c>ApplyOnnxModel(modelFile)</c> does.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="modelFile">Path of the ONNX model.</param>
    [RequiresUnreferencedCode(NotTrimmable)]
    [RequiresDynamicCode(NotTrimmable)]
    public static SparseMobileNetEstimator ScoreSparseMobileNet(this TransformsCatalog catalog, string modelFile) =>
        ScoreSparseMobileNet(catalog, new SparseMobileNetOptions { ModelFile = modelFile });

    /// <summary>Scores the model on <paramref name="inputColumnName"/> into <paramref name="outputColumnName"/>.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Column receiving the model output (a float vector).</param>
    /// <param name="inputColumnName">Column holding the model input: a known-size float vector, e.g. from <c>ExtractPixels</c>.</param>
    /// <param name="modelFile">Path of the ONNX model.</param>
    [RequiresUnreferencedCode(NotTrimmable)]
    [RequiresDynamicCode(NotTrimmable)]
    public static SparseMobileNetEstimator ScoreSparseMobileNet(this TransformsCatalog catalog, string outputColumnName, string inputColumnName, string modelFile) =>
        ScoreSparseMobileNet(catalog, new SparseMobileNetOptions { ModelFile = modelFile, OutputColumnName = outputColumnName, InputColumnName = inputColumnName });

    /// <summary>
    /// The multi-column form of <c>ApplyOnnxModel</c>. Sparse MobileNet models have exactly one input and one output,
    /// so each array must hold exactly one name.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnNames">The one output column.</param>
    /// <param name="inputColumnNames">The one input column.</param>
    /// <param name="modelFile">Path of the ONNX model.</param>
    /// <exception cref="ArgumentException">An array does not hold exactly one name.</exception>
    [RequiresUnreferencedCode(NotTrimmable)]
    [RequiresDynamicCode(NotTrimmable)]
    public static SparseMobileNetEstimator ScoreSparseMobileNet(this TransformsCatalog catalog, string[] outputColumnNames, string[] inputColumnNames, string modelFile)
    {
        ArgumentNullException.ThrowIfNull(outputColumnNames);
        ArgumentNullException.ThrowIfNull(inputColumnNames);
        if (outputColumnNames.Length != 1)
            throw new ArgumentException($"A sparse MobileNet has exactly one output; got {outputColumnNames.Length} output column names.", nameof(outputColumnNames));
        if (inputColumnNames.Length != 1)
            throw new ArgumentException($"A sparse MobileNet has exactly one input; got {inputColumnNames.Length} input column names.", nameof(inputColumnNames));
        return ScoreSparseMobileNet(catalog, outputColumnNames[0], inputColumnNames[0], modelFile);
    }

    /// <summary>Scores the model described by <paramref name="options"/> (model file, bytes or stream; column and tensor names; threads; sparsity threshold; input shape).</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The options; exactly one model source must be set.</param>
    /// <exception cref="ArgumentException">No model source or more than one is set, or a tensor name does not match the model.</exception>
    [RequiresUnreferencedCode(NotTrimmable)]
    [RequiresDynamicCode(NotTrimmable)]
    public static SparseMobileNetEstimator ScoreSparseMobileNet(this TransformsCatalog catalog, SparseMobileNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        // The catalog's environment (internal to ML.NET) hosts the transformer, as it does ML.NET's own transforms.
        var environment = ((Microsoft.ML.Data.IInternalCatalog)catalog).Environment;
        var (model, source) = ReadModel(options);
        var transformer = new SparseMobileNetTransformer(environment, model, source, options.InputColumnName, options.OutputColumnName,
            options.InputTensorName, options.OutputTensorName, options.ThreadsPerRow, options.SparseThreshold, options.InputShape);
        return new SparseMobileNetEstimator(transformer);
    }

    /// <summary>The model's bytes, and what errors call it: the full path of a model file, else "(bytes)" or "(stream)".</summary>
    private static (ReadOnlyMemory<byte> Model, string Source) ReadModel(SparseMobileNetOptions options)
    {
        int sources = (options.ModelFile is null ? 0 : 1) + (options.ModelBytes is null ? 0 : 1) + (options.ModelStream is null ? 0 : 1);
        if (sources != 1)
            throw new ArgumentException($"Set exactly one of ModelFile, ModelBytes and ModelStream; {sources} are set.", nameof(options));
        if (options.ModelBytes is { } bytes) return (bytes, "(bytes)");
        if (options.ModelFile is { } path)
        {
            string fullPath = Path.GetFullPath(path);
            if (!File.Exists(fullPath)) throw new FileNotFoundException($"ONNX model '{fullPath}' not found.", fullPath);
            return (File.ReadAllBytes(fullPath), fullPath);
        }
        using var copy = new MemoryStream();
        options.ModelStream!.CopyTo(copy);
        return (copy.ToArray(), "(stream)");
    }
}
