using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// A 1x1 layer whose large output feeds only a depthwise layer (MobileNet's expansion at 112x112 and 56x56), run band by
/// band: the 1x1 layer computes a band of rows of every channel into per-thread scratch sized for L2, and the depthwise
/// layer turns it into its output rows at once, so the expanded tensor (up to 4.8 MB in MobileNet v2) never goes to L3
/// and back. Rows shared by consecutive bands (kernel minus stride) are moved up, not recomputed. Each value is computed
/// exactly as by the two layers apart (same kernels, same summation order), so results are the same bits.
/// </summary>
internal sealed unsafe class FusedPointwiseDepthwiseLayer : PointwiseDepthwisePair
{
    /// <summary>Fuse only when the 1x1 output is larger than this: smaller tensors stay in L2 between the layers anyway.</summary>
    public const long MinimumIntermediateBytes = 2 << 20;

    /// <summary>Budget for one band of the 1x1 output: half of a 1 MiB L2, leaving room for the weights and the output rows.</summary>
    private const long BandBytes = 512 << 10;

    private readonly ConvGeometry _geometry;
    private readonly int _bandRows, _bandPlane;

    public FusedPointwiseDepthwiseLayer(PointwiseLayer pointwise, DepthwiseLayer depthwise) : base(pointwise, depthwise)
    {
        _geometry = depthwise.WindowGeometry;
        TensorHandle middle = pointwise.Output;
        long rowBytes = (long)middle.Channels * middle.Width * sizeof(float);
        int fittingRows = (int)Math.Max(_geometry.KernelHeight, BandBytes / rowBytes);
        _bandRows = Math.Clamp((fittingRows - _geometry.KernelHeight) / _geometry.StrideHeight + 1, 1, _geometry.OutHeight);
        int bandInputRows = (_bandRows - 1) * _geometry.StrideHeight + _geometry.KernelHeight;
        _bandPlane = PlaneLayout.Padded(bandInputRows * middle.Width);
    }

    /// <summary>Whether the pair's 1x1 output is large enough to pay for bands, and bands can always hold an input row.</summary>
    public static bool Pays(PointwiseLayer pointwise, DepthwiseLayer depthwise)
    {
        ConvGeometry g = depthwise.WindowGeometry;
        // Bands need at least one input row each: padding smaller than the kernel guarantees it.
        return g.Pad.Top < g.KernelHeight && g.Pad.Bottom < g.KernelHeight &&
            (long)pointwise.Output.Length * sizeof(float) > MinimumIntermediateBytes;
    }

    protected override int MiddleFloats => (int)Math.Min(int.MaxValue / 2, (long)Pointwise.Output.Channels * _bandPlane);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        ConvGeometry g = _geometry;
        int width = g.InWidth, outWidth = g.OutWidth, channels = Pointwise.Output.Channels;
        int inputStride = InputStride(tensors), outputStride = OutputStride(tensors);
        float* input = InputOf(tensors), output = OutputOf(tensors), band = scratch;
        float* depthwiseScratch = DepthwiseScratch(scratch);
        (int rowStart, int rowEnd) = WorkSplit.Range(g.OutHeight, part, parts);

        // Input rows [computedStart, computedEnd) of the middle tensor sit in the band, from its first row.
        int computedStart = 0, computedEnd = 0;
        for (int o0 = rowStart; o0 < rowEnd; o0 += _bandRows)
        {
            int o1 = Math.Min(rowEnd, o0 + _bandRows);
            ConvGeometry bandGeometry = g.RowBand(o0, o1, out int r0) with { InPlaneStride = _bandPlane, OutPlaneStride = outputStride };
            int r1 = r0 + bandGeometry.InHeight;
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
                Pointwise.RunPart(input + (long)(r0 + kept) * width, inputStride, band + (long)kept * width, _bandPlane, (r1 - r0 - kept) * width, 0, channels);
            computedStart = r0;
            computedEnd = Math.Max(r1, r0 + kept);

            Depthwise.RunChannels<TVec>(band, output + (long)o0 * outWidth, bandGeometry, 0, channels, depthwiseScratch);
        }
    }
}
