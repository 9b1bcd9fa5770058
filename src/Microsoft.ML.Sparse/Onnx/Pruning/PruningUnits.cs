namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// The pruning units of one layer's weight: single weights, or blocks of up to B consecutive output channels at one
/// inner position (input channel and kernel tap). Each unit has a magnitude score; pruning zeroes whole units.
/// Unit u covers block u / InnerCount of inner position u % InnerCount.
/// </summary>
internal sealed class PruningUnits
{
    private readonly int _blockSize;

    public PruningUnits(WeightLayer layer, int layerIndex, float[] values, int blockSize, BlockNorm norm)
    {
        Layer = layer;
        LayerIndex = layerIndex;
        Values = values;
        _blockSize = blockSize;
        NonzerosBefore = CountNonzeros(values);
        int blocks = (layer.OutChannels + blockSize - 1) / blockSize;
        Scores = new float[checked(blocks * layer.InnerCount)];
        for (int unit = 0; unit < Scores.Length; unit++) Scores[unit] = Score(unit, norm);
    }

    public WeightLayer Layer { get; }

    /// <summary>Position of the layer in the report.</summary>
    public int LayerIndex { get; }

    /// <summary>The effective weight, zeroed in place as units are pruned.</summary>
    public float[] Values { get; }

    public long NonzerosBefore { get; }

    /// <summary>Magnitude of each unit: |w| for single weights, RMS (L2) or mean |w| (L1) of a block. Dividing the norm
    /// by the block's size keeps the order of full blocks and lets a partial trailing block compete fairly.</summary>
    public float[] Scores { get; }

    public int Count => Scores.Length;

    public static long CountNonzeros(float[] values)
    {
        long count = 0;
        foreach (float value in values) if (value != 0f) count++;
        return count;
    }

    /// <summary>Weights in unit <paramref name="unit"/> (B, or fewer for the last block of a channel count not divisible by B).</summary>
    public int SizeOf(int unit) => Math.Min(_blockSize, Layer.OutChannels - unit / Layer.InnerCount * _blockSize);

    public void Zero(int unit)
    {
        int firstChannel = unit / Layer.InnerCount * _blockSize;
        int offset = unit % Layer.InnerCount * Layer.InnerStride;
        for (int channel = firstChannel; channel < firstChannel + SizeOf(unit); channel++) Values[channel * Layer.OutStride + offset] = 0f;
    }

    /// <summary>Per-layer pruning: zeroes this layer's smallest units until its sparsity is nearest <paramref name="target"/>.</summary>
    public void PruneSmallest(float target)
    {
        int[] order = Enumerable.Range(0, Count).ToArray();
        Array.Sort((float[])Scores.Clone(), order);
        SelectSmallest(order, unit => SizeOf(unit), target * (double)Values.Length, unit => Zero(unit));
    }

    /// <summary>
    /// Per-layer sparsities for <see cref="PruningScope.ErdosRenyi"/>: density_l = min(1, eps * sum(dims_l) / prod(dims_l)),
    /// eps chosen so that the layers' nonzeros total (1 - <paramref name="target"/>) of their weights. Layers the rule
    /// would keep whole are set dense and eps is solved again over the rest, until no density exceeds 1.
    /// </summary>
    /// <param name="shapes">Each layer's weight dimensions (their product is its weight count).</param>
    /// <param name="target">Fraction of zeros over all the layers' weights together.</param>
    public static double[] ErdosRenyiSparsities(IReadOnlyList<long[]> shapes, double target)
    {
        int count = shapes.Count;
        double[] weights = shapes.Select(shape => shape.Aggregate(1.0, (product, d) => product * Math.Max(1, d))).ToArray();
        double[] dimensionSums = shapes.Select(shape => (double)shape.Sum(d => Math.Max(1, d))).ToArray();
        double budget = (1 - target) * weights.Sum();
        var dense = new bool[count];
        double epsilon;
        while (true)
        {
            // Nonzeros kept by the dense layers, and the ERK mass of the rest.
            double kept = 0, mass = 0;
            for (int l = 0; l < count; l++)
                if (dense[l]) kept += weights[l];
                else mass += dimensionSums[l];
            epsilon = mass > 0 ? Math.Max(0, budget - kept) / mass : 0;
            bool changed = false;
            for (int l = 0; l < count; l++)
                if (!dense[l] && epsilon * dimensionSums[l] >= weights[l]) dense[l] = changed = true;
            if (!changed) break;
        }
        var sparsities = new double[count];
        for (int l = 0; l < count; l++) sparsities[l] = dense[l] ? 0 : 1 - epsilon * dimensionSums[l] / weights[l];
        return sparsities;
    }

    /// <summary>Global pruning: one magnitude threshold over the units of every layer, so the total sparsity is nearest <paramref name="target"/>.</summary>
    public static void PruneGlobally(IReadOnlyList<PruningUnits> layers, float target, CancellationToken cancellationToken)
    {
        int[] firstUnit = new int[layers.Count + 1];
        for (int i = 0; i < layers.Count; i++) firstUnit[i + 1] = checked(firstUnit[i] + layers[i].Count);
        var scores = new float[firstUnit[^1]];
        for (int i = 0; i < layers.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            layers[i].Scores.CopyTo(scores, firstUnit[i]);
        }
        int[] order = Enumerable.Range(0, scores.Length).ToArray();
        Array.Sort(scores, order);

        (PruningUnits Layer, int Unit) Locate(int globalUnit)
        {
            int index = Array.BinarySearch(firstUnit, globalUnit);
            // An exact hit may be the start of an empty layer: move on to the layer that owns the unit.
            if (index < 0) index = ~index - 1;
            while (firstUnit[index + 1] <= globalUnit) index++;
            return (layers[index], globalUnit - firstUnit[index]);
        }
        double elements = layers.Sum(layer => (double)layer.Values.Length);
        SelectSmallest(order, unit => { var (layer, local) = Locate(unit); return layer.SizeOf(local); }, target * elements,
            unit => { var (layer, local) = Locate(unit); layer.Zero(local); });
    }

    /// <summary>Prunes units in ascending score order while that brings the pruned count nearer to <paramref name="targetElements"/>.
    /// Units that are already zero score 0 and go first, so existing zeros count toward the target.</summary>
    private static void SelectSmallest(int[] order, Func<int, int> sizeOf, double targetElements, Action<int> prune)
    {
        long pruned = 0;
        foreach (int unit in order)
        {
            int size = sizeOf(unit);
            if (pruned + size > targetElements + size / 2.0) break;
            prune(unit);
            pruned += size;
        }
    }

    private float Score(int unit, BlockNorm norm)
    {
        int firstChannel = unit / Layer.InnerCount * _blockSize;
        int offset = unit % Layer.InnerCount * Layer.InnerStride;
        int size = SizeOf(unit);
        double sum = 0;
        for (int channel = firstChannel; channel < firstChannel + size; channel++)
        {
            float value = Values[channel * Layer.OutStride + offset];
            sum += norm == BlockNorm.L2 ? (double)value * value : Math.Abs(value);
        }
        return (float)(norm == BlockNorm.L2 ? Math.Sqrt(sum / size) : sum / size);
    }
}
