using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// <see cref="PruningMethod.Reconstruction"/>: prunes the 1x1 and fully connected layers one after another in network
/// order. For each layer the engine runs the calibration images through the network as pruned so far, up to the
/// layer's input; X X^T of those inputs drives <see cref="ObsReconstruction"/>, and the bias absorbs the mean shift
/// of the layer's output against the dense network's. Memory: one layer's X X^T and weights, one image's
/// activations, and the bounded input cache; never the activations of all layers.
/// </summary>
internal static class ReconstructionPruning
{
    /// <summary>Why a layer's weight cannot be reconstructed from its inputs (then it is magnitude-pruned), or null;
    /// <paramref name="stride"/> is the spatial stride of a 1x1 convolution's samples.</summary>
    public static string? Unsupported(WeightLayer layer, out int stride)
    {
        stride = 1;
        var node = layer.Node;
        long[] Ints(string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray() ?? [];
        if (node.OpType == "Conv")
        {
            if (layer.Kind is not (WeightLayerKind.Pointwise or WeightLayerKind.Classifier) || layer.Shape.Length != 4 || layer.Shape[2] != 1 || layer.Shape[3] != 1)
                return "only 1x1 convolutions are reconstructed";
            if (Ints("pads").Any(p => p != 0)) return "a padded 1x1 convolution";
            long[] strides = Ints("strides");
            if (strides.Length == 2 && strides[0] != strides[1]) return "unequal strides";
            string autoPad = node.Attribute.FirstOrDefault(a => a.Name == "auto_pad")?.S.ToStringUtf8() ?? "NOTSET";
            stride = strides.Length == 2 ? (int)strides[0] : 1;
            if (autoPad is "SAME_UPPER" or "SAME_LOWER" && stride != 1) return "a 1x1 convolution with auto_pad SAME and stride > 1";
            return null;
        }
        if (node.OpType == "Gemm" && (node.Attribute.FirstOrDefault(a => a.Name == "transA")?.I ?? 0) != 0) return "Gemm with transA";
        return null;
    }

    /// <summary>Prunes <paramref name="layers"/> (each with its per-layer target) in place in <paramref name="file"/>
    /// and in their <see cref="PruningUnits.Values"/>; returns a report note per layer.</summary>
    public static Dictionary<PruningUnits, string> Run(OnnxModelFile file, IReadOnlyList<(PruningUnits Units, int Stride, double Target)> layers,
        PruningOptions options, CancellationToken cancellationToken)
    {
        var calibration = options.Calibration!;
        var notes = new Dictionary<PruningUnits, string>();
        if (layers.Count == 0) return notes;
        var dense = file.Model.Clone();
        var geometry = InputGeometry(file);
        var inputs = new CalibrationInputs(calibration, geometry);

        // Layers reading the same tensor share its statistics; groups go in the order of their first layer, which
        // comes after every layer that computes the tensor.
        var groups = layers.Select((layer, index) => (layer, index)).GroupBy(item => SampledTensor(file, item.layer.Units.Layer) + "|" + item.layer.Stride).ToList();
        bool changed = false;
        foreach (var group in groups)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var first = group.First();
            var layer = first.layer.Units.Layer;
            options.Progress?.Report(new PruningProgress("calibration pass", first.index, layers.Count, layer.Name));
            var pruned = new LayerStatistics(layer.InnerCount, withSecondMoment: true);
            // Until a layer has changed, the pruned network's inputs are the dense network's.
            ActivationTap.Collect(file.Model, changed ? dense : null, SampledTensor(file, layer), first.layer.Stride, inputs, pruned, cancellationToken);

            foreach (var (item, index) in group)
            {
                var units = item.Units;
                notes[units] = PruneLayer(file, units, pruned, item.Target, options, cancellationToken);
                changed = true;
                options.Progress?.Report(new PruningProgress("pruned", index, layers.Count, units.Layer.Name));
            }
        }
        return notes;
    }

    /// <summary>
    /// The tensor whose pixels are the layer's samples: its input, or for a layer fed by a global average pool (through
    /// Reshape, Flatten, Squeeze or Identity, as classifiers are) the pool's input. The layer is linear and so is the
    /// pool, so the layer applied to every pixel averages to the layer applied to the pooled vector; the pixels give
    /// H x W times the samples, which a 1000-class classifier over 1000+ channels needs to be calibrated at all.
    /// </summary>
    internal static string SampledTensor(OnnxModelFile file, WeightLayer layer)
    {
        string name = layer.InputName;
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in file.Graph.Node) foreach (string output in node.Output) producers[output] = node;
        for (int hops = 0; hops < 8 && producers.TryGetValue(name, out var producer); hops++)
        {
            switch (producer.OpType)
            {
                case "Reshape" or "Flatten" or "Squeeze" or "Identity" when producer.Input.Count > 0:
                    name = producer.Input[0];
                    continue;
                case "GlobalAveragePool":
                    return producer.Input[0];
                case "ReduceMean" when producer.Attribute.FirstOrDefault(a => a.Name == "axes")?.Ints is { Count: 2 } axes && axes.Order().SequenceEqual([2L, 3L]):
                    return producer.Input[0];
            }
            break;
        }
        return layer.InputName;
    }

    private static string PruneLayer(OnnxModelFile file, PruningUnits units, LayerStatistics statistics, double target, PruningOptions options, CancellationToken cancellationToken)
    {
        double[] prunedMeans = statistics.Means(), denseMeans = statistics.DenseMeans();
        var layer = units.Layer;
        var calibration = options.Calibration!;
        int rows = layer.OutChannels, columns = layer.InnerCount;
        float[] values = units.Values;
        var weights = new double[rows * columns];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < columns; j++) weights[r * columns + j] = values[r * layer.OutStride + j * layer.InnerStride];
        double[] original = (double[])weights.Clone();

        var outcome = ObsReconstruction.Prune(weights, rows, columns, (double[])statistics.SecondMoment!.Clone(), target,
            options.BlockSize, calibration.ColumnBlock, calibration.Dampening, cross: statistics.CrossMoment, cancellationToken: cancellationToken);
        var bias = calibration.BiasCorrection ? layer.Bias : null;
        // Rescaling moves the mean, so it needs the bias to take the mean back.
        bool rescaled = bias is not null && calibration.VarianceCorrection;
        if (rescaled) MatchVariances(weights, original, rows, columns, statistics, prunedMeans, denseMeans);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < columns; j++) values[r * layer.OutStride + j * layer.InnerStride] = (float)weights[r * columns + j];
        layer.WriteValues(file, values);

        string note = $"reconstructed from {statistics.Samples:N0} samples";
        if (outcome.Dampening > calibration.Dampening) note += $", dampening raised to {outcome.Dampening:G2}";
        if (!calibration.BiasCorrection) return note;
        if (bias is null) return note + "; no constant bias to correct";

        // The output's mean moves by W mu_dense - W' mu_pruned; the bias takes it back (scaled for Gemm's alpha / beta).
        float[] biasValues = bias.Read(file);
        for (int r = 0; r < rows; r++)
        {
            double shift = 0;
            for (int j = 0; j < columns; j++) shift += original[r * columns + j] * denseMeans[j] - weights[r * columns + j] * prunedMeans[j];
            biasValues[r] = (float)(biasValues[r] + layer.BiasScale * shift);
        }
        bias.Write(biasValues);
        return note + (rescaled ? ", output variance and bias corrected" : ", bias corrected");
    }

    /// <summary>
    /// Scales each output channel of the pruned weights so that its variance over the calibration samples, w' Cov_p w'^T,
    /// is the dense network's, w Cov_d w^T: the per-channel re-estimation of batch-norm statistics that one-shot pruning
    /// needs (the ridge-damped fit shrinks the outputs towards their mean), done on the folded weights. The factor is
    /// kept within [1/2, 2] so that a channel with a degenerate estimate is not blown up.
    /// </summary>
    private static void MatchVariances(double[] weights, double[] original, int rows, int columns, LayerStatistics statistics, double[] prunedMeans, double[] denseMeans)
    {
        var scratch = new double[columns];
        for (int r = 0; r < rows; r++)
        {
            var row = weights.AsSpan(r * columns, columns);
            double denseVariance = Variance(original.AsSpan(r * columns, columns), statistics.DenseSecondMoment!, denseMeans, statistics.Samples, scratch);
            double prunedVariance = Variance(row, statistics.SecondMoment!, prunedMeans, statistics.Samples, scratch);
            if (!(prunedVariance > 0) || !(denseVariance > 0)) continue;
            double scale = Math.Clamp(Math.Sqrt(denseVariance / prunedVariance), 0.5, 2);
            foreach (ref double w in row) w *= scale;
        }
    }

    /// <summary>Variance over the samples of w . x: w (M / n) w^T - (w . mu)^2, M the second moment.</summary>
    private static double Variance(ReadOnlySpan<double> w, double[] moment, double[] means, long samples, double[] scratch)
    {
        int n = w.Length;
        Array.Clear(scratch);
        for (int i = 0; i < n; i++) if (w[i] != 0) SymmetricFactorization.Axpy(scratch, w[i], moment.AsSpan(i * n, n));
        double mean = SymmetricFactorization.Dot(w, means);
        return SymmetricFactorization.Dot(w, scratch) / Math.Max(1, samples) - mean * mean;
    }

    private static ImageGeometry InputGeometry(OnnxModelFile file)
    {
        var initializers = file.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var input = file.Graph.Input.FirstOrDefault(i => !initializers.Contains(i.Name))
            ?? throw new NotSupportedException("The model has no runtime input to calibrate.");
        var dims = input.Type?.TensorType?.Shape?.Dim.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? (int)d.DimValue : -1).ToArray() ?? [];
        bool hwc = file.Graph.Node.Any(n => n.OpType == "Transpose" && n.Input.Count > 0 && n.Input[0] == input.Name);
        if (dims.Length != 4 || dims.Skip(1).Any(d => d <= 0))
            throw new NotSupportedException($"Calibration needs a fixed image input; '{input.Name}' has dims [{string.Join(",", dims)}].");
        return ImageGeometry.Of(dims[1..], hwc);
    }
}
