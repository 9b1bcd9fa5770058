using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx;
using Microsoft.ML.Sparse.Onnx.Pruning;

namespace Microsoft.ML.Sparse;

/// <summary>
/// One-shot magnitude pruning of a dense ONNX model: zeroes the smallest weights (or blocks of output channels) of its
/// 1x1 convolutions and Gemm/MatMul layers until a target sparsity, and writes the same graph with only initializer
/// values changed. Without fine-tuning this costs accuracy; see docs/pruning.md.
/// </summary>
public static class OnnxPruner
{
    /// <summary>Prunes the model at <paramref name="inputPath"/> and writes it to <paramref name="outputPath"/> (which may be the same file).</summary>
    /// <exception cref="OnnxModelException">The input is not a readable ONNX model, or holds weights in external data.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired; nothing was written.</exception>
    public static PruningReport Prune(string inputPath, string outputPath, PruningOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(outputPath);
        var file = OnnxModelFile.Read(inputPath);
        var report = Prune(file, options, cancellationToken);
        using var output = File.Create(outputPath);
        file.Model.WriteTo(output);
        return report;
    }

    /// <summary>Prunes the model read from <paramref name="input"/> and writes it to <paramref name="output"/>.</summary>
    /// <exception cref="OnnxModelException">The input is not a readable ONNX model, or holds weights in external data.</exception>
    public static PruningReport Prune(Stream input, Stream output, PruningOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        var file = OnnxModelFile.Read(input);
        var report = Prune(file, options, cancellationToken);
        file.Model.WriteTo(output);
        return report;
    }

    /// <summary>Prunes the model in <paramref name="model"/>; <paramref name="prunedModel"/> receives the pruned file's bytes.</summary>
    /// <exception cref="OnnxModelException">The input is not a readable ONNX model, or holds weights in external data.</exception>
    public static PruningReport Prune(ReadOnlyMemory<byte> model, out byte[] prunedModel, PruningOptions? options = null, CancellationToken cancellationToken = default)
    {
        var file = OnnxModelFile.Read(model);
        var report = Prune(file, options, cancellationToken);
        prunedModel = file.Model.ToByteArray();
        return report;
    }

    /// <summary>Prunes the parsed model in place.</summary>
    private static PruningReport Prune(OnnxModelFile file, PruningOptions? options, CancellationToken cancellationToken)
    {
        options ??= new PruningOptions();
        options.Validate();
        var layers = WeightLayer.FindAll(file);
        var candidates = new List<PruningUnits>();
        var reports = new LayerPruningReport?[layers.Count];
        var weightOwners = new Dictionary<string, string>(StringComparer.Ordinal);

        for (int i = 0; i < layers.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var layer = layers[i];
            if (layer.Unreadable is not null)
            {
                reports[i] = new LayerPruningReport(layer.Name, layer.Node.OpType, layer.WeightName, layer.Kind, layer.Shape, 0, 0, false, "left as is: " + layer.Unreadable);
                continue;
            }
            float[] values = layer.Read(file);
            string? skip = weightOwners.TryGetValue(layer.WeightName, out string? owner)
                ? $"shares its weight with {owner}"
                : SkipReason(layer, options);
            weightOwners.TryAdd(layer.WeightName, layer.Name);
            if (skip is null)
            {
                candidates.Add(new PruningUnits(layer, i, values, layer.Kind == WeightLayerKind.Depthwise ? 1 : options.BlockSize, options.BlockNorm));
                continue;
            }
            long nonzeros = PruningUnits.CountNonzeros(values);
            reports[i] = new LayerPruningReport(layer.Name, layer.Node.OpType, layer.WeightName, layer.Kind, layer.Shape, nonzeros, nonzeros, false, "dense: " + skip);
        }

        if (options.Scope == PruningScope.Global) PruningUnits.PruneGlobally(candidates, options.TargetSparsity, cancellationToken);
        foreach (var units in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (options.Scope == PruningScope.PerLayer) units.PruneSmallest(options.TargetSparsity);
        }

        // Only now, with every selection made, are the initializers rewritten: a cancelled run leaves the model untouched.
        foreach (var units in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var layer = units.Layer;
            string note = layer.WriteZeros(file, units.Values);
            reports[units.LayerIndex] = new LayerPruningReport(layer.Name, layer.Node.OpType, layer.WeightName, layer.Kind, layer.Shape,
                units.NonzerosBefore, PruningUnits.CountNonzeros(units.Values), true, note);
        }
        return new PruningReport(options, reports.Select(report => report!).ToList());
    }

    private static string? SkipReason(WeightLayer layer, PruningOptions options) => layer.Kind switch
    {
        WeightLayerKind.FullConvolution when !options.IncludeFirstConvolution => "full (non-1x1) convolution; set IncludeFirstConvolution",
        WeightLayerKind.Depthwise when !options.IncludeDepthwise => "depthwise convolution; set IncludeDepthwise",
        WeightLayerKind.Classifier when !options.IncludeClassifier => "classifier; set IncludeClassifier",
        WeightLayerKind.GroupedConvolution => $"grouped convolution (group {layer.Node.Attribute.First(a => a.Name == "group").I}) is not pruned",
        _ => null,
    };
}
