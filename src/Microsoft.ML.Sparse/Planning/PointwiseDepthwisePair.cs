namespace Microsoft.ML.Sparse;

/// <summary>
/// A 1x1 layer (without residual) and the depthwise layer that alone reads its output, run as one layer: the 1x1 output
/// goes to per-thread scratch instead of the arena. Two ways: band by band for large planes
/// (<see cref="FusedPointwiseDepthwiseLayer"/>), channel range by channel range for small planes when threads share the work
/// (<see cref="PairedPointwiseDepthwiseLayer"/>). Both compute each value exactly as the two layers apart do.
/// </summary>
internal abstract unsafe class PointwiseDepthwisePair(PointwiseLayer pointwise, DepthwiseLayer depthwise)
    : PlannedLayer($"{pointwise.Name} + {depthwise.Name}", "Pointwise+Depthwise", pointwise.Inputs, depthwise.Output)
{
    protected PointwiseLayer Pointwise { get; } = pointwise;
    protected DepthwiseLayer Depthwise { get; } = depthwise;

    /// <summary>Per-thread scratch floats for the 1x1 output; the depthwise layer's own scratch follows them.</summary>
    protected abstract int MiddleFloats { get; }

    public override int ScratchFloats => BufferPlanner.RoundUp(MiddleFloats) + Depthwise.ScratchFloats;
    public override float Sparsity => Pointwise.Sparsity;
    public override string KernelName => $"{Pointwise.KernelName} + {Depthwise.KernelName}";
    public override long DenseMacs => Pointwise.DenseMacs + Depthwise.DenseMacs;
    public override long ExecutedMacs => Pointwise.ExecutedMacs + Depthwise.ExecutedMacs;

    /// <summary>Where the depthwise layer's scratch starts in a thread's <paramref name="scratch"/>.</summary>
    protected float* DepthwiseScratch(float* scratch) => scratch + BufferPlanner.RoundUp(MiddleFloats);

    /// <summary>
    /// Replaces each qualifying pair: band by band when the 1x1 output is large, channel range by channel range when the
    /// plane is small and <paramref name="threads"/> share the work. <paramref name="outputId"/> is the network output,
    /// which must stay a real tensor.
    /// </summary>
    public static PlannedLayer[] Fuse(PlannedLayer[] layers, int outputId, int threads)
    {
        var readers = new Dictionary<int, int>();
        foreach (PlannedLayer layer in layers)
            foreach (TensorHandle input in layer.Inputs.DistinctBy(t => t.Id)) readers[input.Id] = readers.GetValueOrDefault(input.Id) + 1;
        var fused = new List<PlannedLayer>(layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            PlannedLayer? pair = null;
            if (i + 1 < layers.Length && layers[i] is PointwiseLayer { Inputs.Length: 1 } pointwise && layers[i + 1] is DepthwiseLayer depthwise &&
                depthwise.Inputs[0].Id == pointwise.Output.Id && readers[pointwise.Output.Id] == 1 && pointwise.Output.Id != outputId)
            {
                if (FusedPointwiseDepthwiseLayer.Pays(pointwise, depthwise)) pair = new FusedPointwiseDepthwiseLayer(pointwise, depthwise);
                else if (threads > 1 && PairedPointwiseDepthwiseLayer.Pays(pointwise)) pair = new PairedPointwiseDepthwiseLayer(pointwise, depthwise);
            }
            if (pair == null)
            {
                fused.Add(layers[i]);
                continue;
            }
            fused.Add(pair);
            i++;
        }
        return fused.ToArray();
    }
}
