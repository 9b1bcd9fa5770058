namespace Microsoft.ML.Sparse;

/// <summary>
/// A 1x1 layer on a small plane (14x14, 7x7) whose output feeds only a depthwise layer, run as one layer when several
/// threads share the work: each part computes the 1x1 output for its range of channels into per-thread scratch and at once
/// the depthwise layer on the same channels, which need nothing else. That saves the wait between the two layers (their
/// layers last 10-40 us, so the waits weigh) and keeps the depthwise input on the core that computed it. Each value is
/// computed exactly as by the two layers apart, so results are the same bits.
/// </summary>
internal sealed unsafe class PairedPointwiseDepthwiseLayer(PointwiseLayer pointwise, DepthwiseLayer depthwise) : PointwiseDepthwisePair(pointwise, depthwise)
{
    /// <summary>Planes up to this many pixels (14x14, 7x7), where layers last 10-40 us and a wait between threads weighs.</summary>
    public const int MaxPixels = 256;

    private readonly int _plane = PlaneLayout.Padded(pointwise.Output.Height * pointwise.Output.Width);

    /// <summary>Whether the plane is small enough for channel ranges.</summary>
    public static bool Pays(PointwiseLayer pointwise) => pointwise.Output.Height * pointwise.Output.Width <= MaxPixels;

    protected override int MiddleFloats => Pointwise.Output.Channels * _plane;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Pointwise.Output.Channels, part, parts, Pointwise.ChannelGranularity);
        if (start >= end) return;
        ExpandAndFilter<TVec>(Pointwise, Depthwise, InputOf(tensors), InputStride(tensors), scratch, _plane, OutputOf(tensors), OutputStride(tensors),
            start, end, DepthwiseScratch(scratch));
    }
}
