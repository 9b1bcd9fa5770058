using Microsoft.ML.Sparse.Kernels;

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

    internal override IEnumerable<Formats.PointwiseWeights> OwnedWeights => Pointwise.OwnedWeights;

    /// <summary>
    /// Channels [start, end) of <paramref name="pointwise"/> into planes <paramref name="plane"/> floats apart from
    /// <paramref name="middle"/> on (channel c at c - start planes on; padding pixels computed where the input has them), then
    /// <paramref name="depthwise"/> over them into <paramref name="output"/> (channel c at c planes of <paramref name="outputStride"/> on).
    /// </summary>
    internal static void ExpandAndFilter<TVec>(PointwiseLayer pointwise, DepthwiseLayer depthwise, float* input, int inputStride, float* middle, int plane,
        float* output, int outputStride, int start, int end, float* depthwiseScratch) where TVec : struct, IFloatVector<TVec>
    {
        float* channelZero = middle - (long)start * plane;
        pointwise.RunPart(input, inputStride, channelZero, plane, Math.Min(inputStride, plane), start, end);
        ConvGeometry geometry = depthwise.WindowGeometry with { InPlaneStride = plane, OutPlaneStride = outputStride };
        depthwise.RunChannels<TVec>(channelZero, output, geometry, start, end, depthwiseScratch);
    }

    /// <summary>Where the depthwise layer's scratch starts in a thread's <paramref name="scratch"/>.</summary>
    protected float* DepthwiseScratch(float* scratch) => scratch + BufferPlanner.RoundUp(MiddleFloats);

    /// <summary>
    /// Replaces each qualifying pair: band by band when the 1x1 output is large, channel range by channel range when the
    /// plane is small and <paramref name="threads"/> share the work. <paramref name="outputId"/> is the network output,
    /// which must stay a real tensor.
    /// </summary>
    public static PlannedLayer[] Fuse(PlannedLayer[] layers, int outputId, int threads)
    {
        var readers = new TensorReaders(layers, outputId);
        var fused = new List<PlannedLayer>(layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            PlannedLayer? pair = null;
            if (i + 1 < layers.Length && layers[i] is PointwiseLayer { Inputs.Length: 1 } pointwise && layers[i + 1] is DepthwiseLayer depthwise &&
                readers.OnlyReader(pointwise.Output, depthwise))
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
