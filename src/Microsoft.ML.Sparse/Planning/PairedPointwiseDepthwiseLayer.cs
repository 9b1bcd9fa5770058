using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// A 1x1 layer on a small plane (14x14, 7x7) whose output feeds only a depthwise layer, run as one layer when several
/// threads share the work: each part computes the 1x1 output for its range of channels into per-thread scratch and at once
/// the depthwise layer on the same channels, which need nothing else. That saves the wait between the two layers (their
/// layers last 10-40 us, so the waits weigh) and keeps the depthwise input on the core that computed it. Each value is
/// computed exactly as by the two layers apart, so results are the same bits.
/// </summary>
internal sealed unsafe class PairedPointwiseDepthwiseLayer : PlannedLayer
{
    /// <summary>Planes up to this many pixels: where the 1x1 layer splits its output channels between threads anyway.</summary>
    public const int MaxPixels = 256;

    private readonly PointwiseLayer _pointwise;
    private readonly DepthwiseLayer _depthwise;
    private readonly int _plane;

    public PairedPointwiseDepthwiseLayer(PointwiseLayer pointwise, DepthwiseLayer depthwise)
        : base($"{pointwise.Name} + {depthwise.Name}", "Pointwise+Depthwise", pointwise.Inputs, depthwise.Output)
    {
        _pointwise = pointwise;
        _depthwise = depthwise;
        _plane = PlaneLayout.Padded(pointwise.Output.Height * pointwise.Output.Width);
    }

    /// <summary>Whether the pair qualifies: no residual, the depthwise layer reads the 1x1 output, a small plane.</summary>
    public static bool Qualifies(PointwiseLayer pointwise, DepthwiseLayer depthwise) =>
        pointwise.Inputs.Length == 1 && depthwise.Inputs[0].Id == pointwise.Output.Id &&
        pointwise.Output.Height * pointwise.Output.Width <= MaxPixels;

    public override int ScratchFloats => BufferPlanner.RoundUp(_pointwise.Output.Channels * _plane) + _depthwise.ScratchFloats;
    public override float Sparsity => _pointwise.Sparsity;
    public override string KernelName => $"{_pointwise.KernelName} + {_depthwise.KernelName}";
    public override long DenseMacs => _pointwise.DenseMacs + _depthwise.DenseMacs;
    public override long ExecutedMacs => _pointwise.ExecutedMacs + _depthwise.ExecutedMacs;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(_pointwise.Output.Channels, part, parts, _pointwise.ChannelGranularity);
        if (start >= end) return;
        int inputStride = InputStride(tensors);
        // Channel c of the 1x1 output sits at scratch + (c - start) x plane; padding pixels are computed where the input has them.
        float* middle = scratch - (long)start * _plane;
        _pointwise.RunPart(InputOf(tensors), inputStride, middle, _plane, Math.Min(inputStride, _plane), start, end);
        ConvGeometry geometry = _depthwise.WindowGeometry with { InPlaneStride = _plane, OutPlaneStride = OutputStride(tensors) };
        _depthwise.RunChannels<TVec>(middle, OutputOf(tensors), geometry, start, end, scratch + BufferPlanner.RoundUp(_pointwise.Output.Channels * _plane));
    }
}
