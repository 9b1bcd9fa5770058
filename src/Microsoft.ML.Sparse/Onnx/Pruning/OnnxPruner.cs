using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx;
using Microsoft.ML.Sparse.Onnx.Pruning;

namespace Microsoft.ML.Sparse;

/// <summary>
/// One-shot pruning of a dense ONNX model: zeroes weights (or blocks of output channels) of its 1x1 convolutions and
/// Gemm/MatMul layers until a target sparsity, and writes the same graph with only initializer values changed. By
/// magnitude (no data; costs accuracy quickly) or, with <see cref="PruningMethod.Reconstruction"/>, by layer-wise
/// reconstruction from a few calibration images, which keeps the model's answers to much higher sparsity. Not thread
/// safe per call arguments only: concurrent calls on different models are independent. See docs/pruning.md.
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

        var notes = options.Method == PruningMethod.Reconstruction
            ? Reconstruct(file, candidates, options, cancellationToken)
            : [];
        if (options.Method == PruningMethod.Magnitude)
        {
            if (options.Scope == PruningScope.Global) PruningUnits.PruneGlobally(candidates, options.TargetSparsity, cancellationToken);
            var shaped = options.Scope == PruningScope.ErdosRenyi ? ErdosRenyiTargets(candidates, options) : null;
            foreach (var units in candidates)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (options.Scope == PruningScope.PerLayer) units.PruneSmallest(options.TargetSparsity);
                else if (shaped is not null) units.PruneSmallest((float)shaped[units]);
            }
        }

        // Only now, with every selection made, are the initializers rewritten: a cancelled run leaves the model untouched.
        foreach (var units in candidates)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var layer = units.Layer;
            string note = layer.WriteZeros(file, units.Values);
            if (notes.TryGetValue(units, out string? method)) note = note.Length == 0 ? method : method + "; " + note;
            reports[units.LayerIndex] = new LayerPruningReport(layer.Name, layer.Node.OpType, layer.WeightName, layer.Kind, layer.Shape,
                units.NonzerosBefore, PruningUnits.CountNonzeros(units.Values), true, note);
        }
        return new PruningReport(options, reports.Select(report => report!).ToList());
    }

    /// <summary>Each candidate's sparsity under <see cref="PruningScope.ErdosRenyi"/>.</summary>
    private static Dictionary<PruningUnits, double> ErdosRenyiTargets(List<PruningUnits> candidates, PruningOptions options)
    {
        double[] sparsities = PruningUnits.ErdosRenyiSparsities(candidates.Select(units => units.Layer.Shape).ToList(), options.TargetSparsity);
        return candidates.Select((units, i) => (units, sparsities[i])).ToDictionary(pair => pair.units, pair => pair.Item2);
    }

    /// <summary>
    /// <see cref="PruningMethod.Reconstruction"/>: the layers whose inputs can be collected are reconstructed one after
    /// another; the rest (full and depthwise convolutions when included) are magnitude-pruned. A global scope sets the
    /// per-layer targets where one magnitude threshold over all candidates would put them.
    /// </summary>
    private static Dictionary<PruningUnits, string> Reconstruct(OnnxModelFile file, List<PruningUnits> candidates, PruningOptions options, CancellationToken cancellationToken)
    {
        var targets = options.Scope == PruningScope.ErdosRenyi
            ? ErdosRenyiTargets(candidates, options)
            : candidates.ToDictionary(units => units, _ => (double)options.TargetSparsity);
        if (options.Scope == PruningScope.Global)
        {
            var trial = candidates.Select(units => new PruningUnits(units.Layer, units.LayerIndex, (float[])units.Values.Clone(),
                units.Layer.Kind == WeightLayerKind.Depthwise ? 1 : options.BlockSize, options.BlockNorm)).ToList();
            PruningUnits.PruneGlobally(trial, options.TargetSparsity, cancellationToken);
            for (int i = 0; i < candidates.Count; i++)
                targets[candidates[i]] = 1.0 - (double)PruningUnits.CountNonzeros(trial[i].Values) / Math.Max(1, trial[i].Values.Length);
        }

        var reconstructed = new List<(PruningUnits Units, int Stride, double Target)>();
        var notes = new Dictionary<PruningUnits, string>();
        foreach (var units in candidates)
        {
            string? reason = ReconstructionPruning.Unsupported(units.Layer, out int stride);
            if (reason is null)
            {
                reconstructed.Add((units, stride, targets[units]));
                continue;
            }
            units.PruneSmallest((float)targets[units]);
            notes[units] = "magnitude: " + reason;
        }
        foreach (var (units, note) in ReconstructionPruning.Run(file, reconstructed, options, cancellationToken)) notes[units] = note;
        return notes;
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
