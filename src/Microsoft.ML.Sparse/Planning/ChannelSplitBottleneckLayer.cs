using Microsoft.ML.Sparse.Formats;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// With several threads: an inverted-residual block's expansion (1x1), depthwise layer and projection (1x1) as one layer,
/// one part per thread, split by expanded channels. A part expands its channels, filters them and sums the projection
/// over them alone, all in its thread's scratch, and writes the projection's partial sums; <see cref="PartialSumLayer"/>
/// then adds the parts with the projection's bias, residual and activation. Nothing a part reads was written by another
/// core except the block's input, where split layers pass each other half of every wide tensor (v2 at 90%, two threads:
/// 5-8% faster whole inferences).
/// </summary>
/// <remarks>
/// The projection's sum over input channels is cut in as many pieces as there are threads, so with N threads results are
/// always the same bits, and within rounding (not bitwise) of one thread's. One thread never uses this layer.
/// </remarks>
internal sealed unsafe class ChannelSplitBottleneckLayer : PlannedLayer
{
    /// <summary>
    /// Expanded planes up to 28x28: larger ones (v2's 56x56 blocks) gained nothing more measurable, and a part's scratch
    /// (expanded and filtered planes) outgrows L2.
    /// </summary>
    public const int MaxPixels = 28 * 28;

    /// <summary>
    /// The projection must cut the expanded channels at least this much: the sum reads parts x its output, so it pays where
    /// that is small against the expanded tensor it keeps in place (MobileNet v2: 6x). v1's 1x1 -> depthwise -> 1x1 runs
    /// keep or double the channels; split, their sums took 20-36 us each and v1 at 90% lost 2-3% on two threads.
    /// </summary>
    public const int MinNarrowing = 2;

    private readonly PointwiseLayer _expansion;
    private readonly DepthwiseLayer _depthwise;
    /// <summary>Per part, the projection's columns of the part's channels.</summary>
    private readonly PointwiseWeights[] _projectionParts;
    private readonly int _parts, _partChannels, _middlePlane, _filteredPlane, _projectionChannels;
    private readonly SimdWidth _width;
    private readonly long _denseMacs, _executedMacs;
    private readonly float _sparsity;

    private ChannelSplitBottleneckLayer(PointwiseLayer expansion, DepthwiseLayer depthwise, PointwiseLayer projection, TensorHandle partials, int parts,
        float sparseThreshold)
        : base($"{expansion.Name} + {depthwise.Name} + {projection.Name}", "Pointwise+Depthwise+Pointwise", expansion.Inputs, partials)
    {
        _expansion = expansion;
        _depthwise = depthwise;
        _parts = parts;
        _width = projection.Width;
        _projectionChannels = projection.Output.Channels;
        _middlePlane = PlaneLayout.Padded(expansion.Output.Height * expansion.Output.Width);
        _filteredPlane = PlaneLayout.Padded(depthwise.Output.Height * depthwise.Output.Width);
        int channels = expansion.Output.Channels;
        var dense = new float[(long)_projectionChannels * channels];
        projection.Weights.ToDense(dense);
        _projectionParts = new PointwiseWeights[parts];
        for (int part = 0; part < parts; part++)
        {
            (int start, int end) = ChannelRange(part);
            _partChannels = Math.Max(_partChannels, end - start);
            var columns = new float[(long)_projectionChannels * (end - start)];
            for (int o = 0; o < _projectionChannels; o++)
                dense.AsSpan(o * channels + start, end - start).CopyTo(columns.AsSpan(o * (end - start)));
            _projectionParts[part] = PointwiseKernel.PrepareWeights(columns, [], _projectionChannels, end - start,
                depthwise.Output.Height * depthwise.Output.Width, sparseThreshold, _width);
        }
        _denseMacs = expansion.DenseMacs + depthwise.DenseMacs + projection.DenseMacs;
        _executedMacs = expansion.ExecutedMacs + depthwise.ExecutedMacs + projection.ExecutedMacs;
        _sparsity = projection.Sparsity;
        KernelName = $"{expansion.KernelName} + {depthwise.KernelName} + {projection.KernelName}, {parts} partial sums";
    }

    public override int PartsPerThread => 1;
    public override float Sparsity => _sparsity;
    public override string KernelName { get; }
    public override long DenseMacs => _denseMacs;
    public override long ExecutedMacs => _executedMacs;

    internal override IEnumerable<PointwiseWeights> OwnedWeights => _expansion.OwnedWeights.Concat(_projectionParts);

    private int MiddleFloats => BufferPlanner.RoundUp(_partChannels * _middlePlane);
    private int FilteredFloats => BufferPlanner.RoundUp(_partChannels * _filteredPlane);

    /// <summary>A part's expanded planes, then its filtered planes, then the depthwise kernel's own scratch.</summary>
    public override int ScratchFloats => MiddleFloats + FilteredFloats + _depthwise.ScratchFloats;

    /// <summary>The expanded channels of part <paramref name="part"/>, at the expansion's block boundaries.</summary>
    private (int Start, int End) ChannelRange(int part) => WorkSplit.Range(_expansion.Output.Channels, part, _parts, _expansion.ChannelGranularity);

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        if (parts != _parts) throw new InvalidOperationException($"Layer '{Name}' was planned for {_parts} parts, not {parts}.");
        (int start, int end) = ChannelRange(part);
        int outputStride = OutputStride(tensors);
        // The part's expanded planes, then its filtered planes (channel c at c - start planes on), in the thread's scratch.
        float* filtered = scratch + MiddleFloats - (long)start * _filteredPlane;
        PointwiseDepthwisePair.ExpandAndFilter<TVec>(_expansion, _depthwise, InputOf(tensors), InputStride(tensors), scratch, _middlePlane,
            filtered, _filteredPlane, start, end, scratch + MiddleFloats + FilteredFloats);
        int pixels = PointwiseKernel.PixelsToCompute(_depthwise.Output.Height * _depthwise.Output.Width, Math.Min(_filteredPlane, outputStride), _width);
        PointwiseKernel.Run(_projectionParts[part], filtered + (long)start * _filteredPlane, OutputOf(tensors) + (long)part * _projectionChannels * outputStride,
            null, new PlaneStrides(_filteredPlane, outputStride, outputStride), 0, pixels, 0, _projectionChannels, Activation.None, _width);
    }

    /// <summary>
    /// With several threads, replaces each expansion -> depthwise -> projection run (each output read only by the next,
    /// expanded planes of at most <see cref="MaxPixels"/>, a block of expanded channels for every thread, a projection that
    /// narrows by <see cref="MinNarrowing"/>) with the split
    /// layer and its <see cref="PartialSumLayer"/>. The partial sums get new tensor ids from <paramref name="tensorCount"/>.
    /// </summary>
    public static PlannedLayer[] Fuse(PlannedLayer[] layers, int outputId, SparseNetworkOptions options, ref int tensorCount)
    {
        int parts = options.Threads;
        if (parts < 2) return layers;
        var readers = new TensorReaders(layers, outputId);

        var fused = new List<PlannedLayer>(layers.Length);
        for (int i = 0; i < layers.Length; i++)
        {
            if (i + 2 < layers.Length && layers[i] is PointwiseLayer { Inputs.Length: 1 } expansion && layers[i + 1] is DepthwiseLayer depthwise &&
                layers[i + 2] is PointwiseLayer projection && readers.OnlyReader(expansion.Output, depthwise) && readers.OnlyReader(depthwise.Output, projection) &&
                expansion.Output.Height * expansion.Output.Width <= MaxPixels && expansion.Output.Channels / expansion.ChannelGranularity >= parts &&
                projection.Output.Channels * MinNarrowing <= expansion.Output.Channels)
            {
                TensorHandle output = projection.Output;
                var partials = new TensorHandle(tensorCount++, parts * output.Channels, output.Height, output.Width);
                fused.Add(new ChannelSplitBottleneckLayer(expansion, depthwise, projection, partials, parts, options.SparseThreshold));
                fused.Add(new PartialSumLayer(projection, partials, parts));
                projection.Dispose(); // its weights live on, split, in the parts (and its bias in the sum)
                i += 2;
                continue;
            }
            fused.Add(layers[i]);
        }
        return fused.ToArray();
    }
}

/// <summary>
/// The projection of a <see cref="ChannelSplitBottleneckLayer"/>: <c>activation(partial sums added in part order + bias (+ residual))</c>,
/// split like a 1x1 layer (by pixels where there are enough, else by channels).
/// </summary>
internal sealed unsafe class PartialSumLayer : PlannedLayer
{
    private readonly float[] _bias;
    private readonly int _sums;
    private readonly Activation _activation;

    public PartialSumLayer(PointwiseLayer projection, TensorHandle partials, int sums)
        : base(projection.Name, "PartialSum", projection.Inputs.Length > 1 ? [partials, projection.Inputs[1]] : [partials], projection.Output)
    {
        _bias = Pin(new ReadOnlySpan<float>(projection.Weights.Bias, projection.Output.Channels));
        _sums = sums;
        _activation = projection.Activation;
    }

    public override string KernelName => $"sum of {_sums} partial sums";

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        float* residual = Inputs.Length > 1 ? InputOf(tensors, 1) : null;
        int partialStride = InputStride(tensors), outputStride = OutputStride(tensors);
        (int pixelStart, int pixelEnd, int channelStart, int channelEnd) =
            WorkSplit.PixelsOrChannels(Output.Height * Output.Width, Output.Channels, part, parts, channelAlign: 1);
        ElementwiseKernels.SumPartials<TVec>(InputOf(tensors), _sums, (long)Output.Channels * partialStride, partialStride, Address(_bias),
            residual, residual == null ? 0 : InputStride(tensors, 1), OutputOf(tensors), outputStride, channelStart, channelEnd, pixelStart, pixelEnd, _activation);
    }
}
