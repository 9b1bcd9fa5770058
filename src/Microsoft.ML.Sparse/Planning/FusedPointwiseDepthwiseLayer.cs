using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// A 1x1 layer whose large output feeds only a depthwise layer (MobileNet's expansion at 112x112 and 56x56), run band by
/// band: the 1x1 layer computes a band of rows of every channel into per-thread scratch sized for L2, and the depthwise
/// layer turns it into its output rows at once, so the expanded tensor (up to 4.8 MB in MobileNet v2) never goes to L3
/// and back. Rows shared by consecutive bands (kernel minus stride) are moved up, not recomputed. Each value is computed
/// exactly as by the two layers apart (same kernels, same summation order), so results are the same bits.
/// </summary>
internal sealed unsafe class FusedPointwiseDepthwiseLayer : PlannedLayer
{
    /// <summary>Fuse only when the 1x1 output is larger than this: smaller tensors stay in L2 between the layers anyway.</summary>
    public const long MinimumIntermediateBytes = 2 << 20;

    /// <summary>Budget for one band of the 1x1 output: half of a 1 MiB L2, leaving room for the weights and the output rows.</summary>
    private const long BandBytes = 512 << 10;

    private readonly PointwiseLayer _pointwise;
    private readonly DepthwiseLayer _depthwise;
    private readonly ConvGeometry _geometry;
    private readonly int _bandRows, _bandInputRows, _bandPlane;

    public FusedPointwiseDepthwiseLayer(PointwiseLayer pointwise, DepthwiseLayer depthwise)
        : base($"{pointwise.Name} + {depthwise.Name}", "Pointwise+Depthwise", pointwise.Inputs, depthwise.Output)
    {
        _pointwise = pointwise;
        _depthwise = depthwise;
        _geometry = depthwise.WindowGeometry;
        TensorHandle middle = pointwise.Output;
        long rowBytes = (long)middle.Channels * middle.Width * sizeof(float);
        int fittingRows = (int)Math.Max(_geometry.KernelHeight, BandBytes / rowBytes);
        _bandRows = Math.Clamp((fittingRows - _geometry.KernelHeight) / _geometry.StrideHeight + 1, 1, _geometry.OutHeight);
        _bandInputRows = (_bandRows - 1) * _geometry.StrideHeight + _geometry.KernelHeight;
        _bandPlane = PlaneLayout.Padded(_bandInputRows * middle.Width);
    }

    /// <summary>
    /// Replaces each 1x1 layer (without residual) whose output is read only by the depthwise layer right after it: with
    /// this band-wise layer when the output is large, with <see cref="PairedPointwiseDepthwiseLayer"/> when the plane is
    /// small and <paramref name="threads"/> share the work. <paramref name="outputId"/> is the network output, which must
    /// stay a real tensor.
    /// </summary>
    public static PlannedLayer[] FusePairs(PlannedLayer[] layers, int outputId, int threads)
    {
        var readers = new Dictionary<int, int>();
        foreach (PlannedLayer layer in layers)
            foreach (TensorHandle input in layer.Inputs.DistinctBy(t => t.Id)) readers[input.Id] = readers.GetValueOrDefault(input.Id) + 1;
        var fused = new List<PlannedLayer>(layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            if (i + 1 < layers.Length && layers[i] is PointwiseLayer pointwise && layers[i + 1] is DepthwiseLayer depthwise &&
                readers[pointwise.Output.Id] == 1 && pointwise.Output.Id != outputId)
            {
                if (Pays(pointwise, depthwise)) fused.Add(new FusedPointwiseDepthwiseLayer(pointwise, depthwise));
                else if (threads > 1 && PairedPointwiseDepthwiseLayer.Qualifies(pointwise, depthwise)) fused.Add(new PairedPointwiseDepthwiseLayer(pointwise, depthwise));
                else
                {
                    fused.Add(pointwise);
                    continue;
                }
                i++;
            }
            else
            {
                fused.Add(layers[i]);
            }
        }
        return fused.ToArray();
    }

    private static bool Pays(PointwiseLayer pointwise, DepthwiseLayer depthwise)
    {
        ConvGeometry g = depthwise.WindowGeometry;
        // Bands need at least one input row each: padding smaller than the kernel guarantees it.
        return pointwise.Inputs.Length == 1 && depthwise.Inputs[0].Id == pointwise.Output.Id &&
            g.Pad.Top < g.KernelHeight && g.Pad.Bottom < g.KernelHeight &&
            (long)pointwise.Output.Length * sizeof(float) > MinimumIntermediateBytes;
    }

    public override int ScratchFloats =>
        BufferPlanner.RoundUp((int)Math.Min(int.MaxValue / 2, (long)_pointwise.Output.Channels * _bandPlane)) + _depthwise.ScratchFloats;
    public override float Sparsity => _pointwise.Sparsity;
    public override string KernelName => $"{_pointwise.KernelName} + {_depthwise.KernelName}";
    public override long DenseMacs => _pointwise.DenseMacs + _depthwise.DenseMacs;
    public override long ExecutedMacs => _pointwise.ExecutedMacs + _depthwise.ExecutedMacs;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        ConvGeometry g = _geometry;
        int width = g.InWidth, outWidth = g.OutWidth, channels = _pointwise.Output.Channels;
        int inputStride = InputStride(tensors), outputStride = OutputStride(tensors);
        float* input = InputOf(tensors), output = OutputOf(tensors), band = scratch;
        float* depthwiseScratch = scratch + BufferPlanner.RoundUp(channels * _bandPlane);
        (int rowStart, int rowEnd) = WorkSplit.Range(g.OutHeight, part, parts);

        // Input rows [computedStart, computedEnd) of the middle tensor sit in the band, from its first row.
        int computedStart = 0, computedEnd = 0;
        for (int o0 = rowStart; o0 < rowEnd; o0 += _bandRows)
        {
            int o1 = Math.Min(rowEnd, o0 + _bandRows);
            // Padded rows o0 * sh .. (o1 - 1) * sh + kh - 1 are input rows shifted by the top padding; the rest is padding.
            int first = o0 * g.StrideHeight - g.Pad.Top, last = (o1 - 1) * g.StrideHeight + g.KernelHeight - g.Pad.Top;
            int r0 = Math.Max(0, first), r1 = Math.Min(g.InHeight, last);
            int kept = 0;
            if (computedEnd > r0 && computedStart <= r0)
            {
                // Rows the previous band already computed move to the top instead of being computed again.
                kept = computedEnd - r0;
                for (int c = 0; c < channels; c++)
                    new ReadOnlySpan<float>(band + (long)c * _bandPlane + (long)(r0 - computedStart) * width, kept * width)
                        .CopyTo(new Span<float>(band + (long)c * _bandPlane, kept * width));
            }
            if (r1 > r0 + kept)
                _pointwise.RunPart(input + (long)(r0 + kept) * width, inputStride, band + (long)kept * width, _bandPlane, (r1 - r0 - kept) * width, 0, channels);
            computedStart = r0;
            computedEnd = Math.Max(r1, r0 + kept);

            var bandGeometry = new ConvGeometry(r1 - r0, width, g.KernelHeight, g.KernelWidth, g.StrideHeight, g.StrideWidth,
                new Padding(Math.Max(0, -first), g.Pad.Left, Math.Max(0, last - g.InHeight), g.Pad.Right))
            { InPlaneStride = _bandPlane, OutPlaneStride = outputStride };
            _depthwise.RunChannels<TVec>(band, output + (long)o0 * outWidth, bandGeometry, 0, channels, depthwiseScratch);
        }
    }
}
