using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// One executable layer of a plan. Immutable once built; <see cref="Run"/> computes one of several parts of the layer (any
/// thread may run any part), split only along dimensions that leave every output's summation order unchanged.
/// </summary>
internal abstract unsafe class PlannedLayer(string name, string kind, TensorHandle[] inputs, TensorHandle output) : IDisposable
{
    public string Name { get; } = name;
    public string Kind { get; } = kind;
    public TensorHandle[] Inputs { get; } = inputs;
    public TensorHandle Output { get; } = output;

    /// <summary>
    /// With N threads, the layer runs as this many parts x N. Two per thread by default: enough for the running threads to
    /// absorb an absent one's share.
    /// </summary>
    public virtual int PartsPerThread => 2;

    /// <summary>Per-thread scratch floats this layer needs.</summary>
    public virtual int ScratchFloats => 0;
    public virtual float Sparsity => 0f;
    public virtual string KernelName => Kind;
    public virtual long DenseMacs => 0;
    public virtual long ExecutedMacs => DenseMacs;

    /// <summary>Returns the layer to execute under <paramref name="options"/> (converts weights where the kernel needs another format).</summary>
    public virtual PlannedLayer Prepare(SparseNetworkOptions options) => this;

    /// <summary>The 1x1 weights in native memory this layer owns (layers of managed arrays own none).</summary>
    internal virtual IEnumerable<Formats.PointwiseWeights> OwnedWeights => [];

    /// <summary>Frees <see cref="OwnedWeights"/>; the layer cannot run afterwards.</summary>
    public void Dispose()
    {
        foreach (Formats.PointwiseWeights weights in OwnedWeights) weights.Dispose();
    }

    /// <summary>Runs part <paramref name="part"/> of <paramref name="parts"/>; <paramref name="tensors"/> maps tensor ids to their buffers.</summary>
    public abstract void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts) where TVec : struct, IFloatVector<TVec>;

    /// <summary>
    /// Whether the layer reaches every channel plane of its tensors through <see cref="TensorTable.PlaneStride"/>, so the
    /// plan may pad those planes (<see cref="PlaneLayout"/>). Layers that read a tensor as one flat vector say no.
    /// </summary>
    public virtual bool HandlesPlaneStrides => true;

    /// <summary>Whether the layer maps its operands element by element as flat arrays (padding included), so they must share one plane stride.</summary>
    public virtual bool IsElementwise => false;

    protected float* InputOf(TensorTable tensors, int index = 0) => tensors[Inputs[index]];
    protected float* OutputOf(TensorTable tensors) => tensors[Output];
    protected int InputStride(TensorTable tensors, int index = 0) => tensors.PlaneStride(Inputs[index]);
    protected int OutputStride(TensorTable tensors) => tensors.PlaneStride(Output);

    /// <summary>Fraction of exact zeros.</summary>
    protected static float ZeroFraction(float[] weights) => weights.Length == 0 ? 0f : (float)weights.AsSpan().Count(0f) / weights.Length;

    /// <summary>Copies weights into a pinned array (kernels take raw pointers to it for the network's lifetime).</summary>
    public static float[] Pin(ReadOnlySpan<float> values)
    {
        float[] pinned = GC.AllocateArray<float>(values.Length, pinned: true);
        values.CopyTo(pinned);
        return pinned;
    }

    protected static float* Address(float[] pinned) => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(pinned));
}

/// <summary>Splits work between threads at aligned boundaries, so a unit (e.g. a block of channels) is never divided.</summary>
internal static class WorkSplit
{
    /// <summary>
    /// Pixel ranges of 1x1-like layers are split at multiples of the widest vector, so every pixel is computed by a full
    /// vector of the same width (hence bitwise the same) with any thread count.
    /// </summary>
    public const int PixelAlign = 16;

    /// <summary>
    /// Below this many pixels per part (three vectors), a 1x1-like layer's output channels are split instead (7x7 layers).
    /// Parts of pixels read only their pixels of every input channel, where parts of channels read every pixel of every input
    /// channel, half of it written by the other core: on 14x14 planes with two threads pixel parts of three vectors made
    /// whole v2 inferences faster in 50-60 of 60 alternating rounds (5-8%), though channel parts run the better tiles
    /// when a layer is timed alone.
    /// </summary>
    public const int MinPixelsPerPart = 48;

    /// <summary>
    /// Part <paramref name="part"/> of a layer that maps each pixel of each output channel on its own (1x1 convolutions, sums):
    /// a range of pixels where every part gets <see cref="MinPixelsPerPart"/>, else a range of output channels at
    /// multiples of <paramref name="channelAlign"/>, with all pixels.
    /// </summary>
    public static (int PixelStart, int PixelEnd, int ChannelStart, int ChannelEnd) PixelsOrChannels(int pixels, int channels, int part, int parts, int channelAlign)
    {
        if (pixels >= MinPixelsPerPart * parts)
        {
            (int start, int end) = Range(pixels, part, parts, PixelAlign);
            return (start, end, 0, channels);
        }
        (int channelStart, int channelEnd) = Range(channels, part, parts, channelAlign);
        return (0, pixels, channelStart, channelEnd);
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of [0, total), boundaries at multiples of <paramref name="align"/>.</summary>
    public static (int Start, int End) Range(int total, int part, int parts, int align = 1)
    {
        int units = (total + align - 1) / align;
        int start = (int)((long)units * part / parts) * align, end = (int)((long)units * (part + 1) / parts) * align;
        return (Math.Min(start, total), Math.Min(end, total));
    }
}

internal sealed unsafe class TransposeLayer(string name, TensorHandle input, TensorHandle output)
    : PlannedLayer(name, "TransposeHwcToChw", [input], output)
{
    /// <summary>The input is HWC, not planes.</summary>
    public override bool HandlesPlaneStrides => false;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels, part, parts);
        ElementwiseKernels.TransposeHwcToChw(InputOf(tensors), OutputOf(tensors), Output.Channels, Output.Height * Output.Width, start, end);
    }
}

/// <summary>What the direct and depthwise convolution layers share: pinned weights, window geometry, activation.</summary>
internal abstract unsafe class WindowLayer(string name, string kind, TensorHandle input, TensorHandle output, float[] weights, float[] bias, ConvGeometry geometry, Activation activation)
    : PlannedLayer(name, kind, [input], output)
{
    // The arrays (not just their addresses) are held, so the pinned weights live as long as the layer.
    private readonly float[] _weights = weights, _bias = bias;
    private readonly float _sparsity = ZeroFraction(weights);
    protected readonly ConvGeometry Geometry = geometry;
    protected readonly Activation Activation = activation;

    public override float Sparsity => _sparsity;
    public override string KernelName => $"{Kind.ToLowerInvariant()} {Geometry.KernelHeight}x{Geometry.KernelWidth} s{Geometry.StrideHeight}x{Geometry.StrideWidth}";
    protected float* Weights => Address(_weights);
    protected float* Bias => Address(_bias);

    /// <summary>The geometry with this plan's plane strides of input and output.</summary>
    protected ConvGeometry StridedGeometry(TensorTable tensors) =>
        Geometry with { InPlaneStride = InputStride(tensors), OutPlaneStride = OutputStride(tensors) };
}

internal sealed unsafe class ConvLayer(string name, TensorHandle input, TensorHandle output, float[] weights, float[] bias, ConvGeometry geometry, Activation activation)
    : WindowLayer(name, "Conv", input, output, weights, bias, geometry, activation)
{
    public override int ScratchFloats => DirectConvKernel.ScratchFloats(Geometry, Inputs[0].Channels);
    public override long DenseMacs => (long)Output.Length * Inputs[0].Channels * Geometry.Taps;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Height, part, parts);
        DirectConvKernel.Run<TVec>(InputOf(tensors), OutputOf(tensors), Weights, Bias, StridedGeometry(tensors), Inputs[0].Channels, Output.Channels, start, end, Activation, scratch);
    }
}

internal sealed unsafe class DepthwiseLayer(string name, TensorHandle input, TensorHandle output, float[] weights, float[] bias, ConvGeometry geometry, Activation activation)
    : WindowLayer(name, "Depthwise", input, output, weights, bias, geometry, activation)
{
    public override int ScratchFloats => DepthwiseConvKernel.ScratchFloats(Geometry);
    public override long DenseMacs => (long)Output.Length * Geometry.Taps;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels, part, parts);
        DepthwiseConvKernel.Run<TVec>(InputOf(tensors), OutputOf(tensors), Weights, Bias, StridedGeometry(tensors), start, end, Activation, scratch);
    }

    internal ConvGeometry WindowGeometry => Geometry;

    /// <summary>Channels [channelStart, channelEnd) with <paramref name="geometry"/> (the layer's, with strides, or cut to a band of rows).</summary>
    internal void RunChannels<TVec>(float* input, float* output, in ConvGeometry geometry, int channelStart, int channelEnd, float* scratch)
        where TVec : struct, IFloatVector<TVec> =>
        DepthwiseConvKernel.Run<TVec>(input, output, Weights, Bias, geometry, channelStart, channelEnd, Activation, scratch);
}

/// <summary>
/// A 1x1 convolution as recorded by the builder (dense weights <c>[Cout, Cin]</c>); <see cref="Prepare"/> turns it into the SpMM
/// layer, or into the GEMV layer when the tensor is a single pixel.
/// </summary>
internal sealed class PointwiseSpec(string name, TensorHandle input, TensorHandle output, float[] weights, float[] bias, Activation activation, TensorHandle? residual)
    : PlannedLayer(name, "Pointwise", residual is { } r ? [input, r] : [input], output)
{
    public override PlannedLayer Prepare(SparseNetworkOptions options)
    {
        int pixels = Output.Height * Output.Width, outChannels = Output.Channels, inChannels = Inputs[0].Channels;
        if (pixels == 1) return new FullyConnectedLayer(Name, Kind, Inputs, Output, weights, bias, activation).Prepare(options);
        return new PointwiseLayer(Name, Inputs, Output,
            PointwiseKernel.PrepareWeights(weights, bias, outChannels, inChannels, pixels, options.SparseThreshold, options.MaxSimdWidth),
            activation, SimdSupport.Resolve(options.MaxSimdWidth));
    }

    public override unsafe void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts) =>
        throw new InvalidOperationException($"Layer '{Name}' was not prepared.");
}

/// <remarks>
/// Inputs: x, then the residual if any, then (when <paramref name="scaledWeights"/>) the weights scaled per input channel
/// for this inference, which replace the stored ones (<see cref="SqueezeExcitationFolding"/>).
/// </remarks>
internal sealed unsafe class PointwiseLayer(string name, TensorHandle[] inputs, TensorHandle output, Formats.PointwiseWeights weights, Activation activation,
    SimdWidth width, bool scaledWeights = false)
    : PlannedLayer(name, "Pointwise", inputs, output)
{
    private readonly Activation _activation = activation;

    /// <summary>Whether the layer has a residual input.</summary>
    internal bool HasResidual => Inputs.Length > (scaledWeights ? 2 : 1);

    /// <summary>Whether the last input holds this inference's weights, scaled per input channel.</summary>
    internal bool HasScaledWeights => scaledWeights;

    /// <summary>The same layer reading <paramref name="input"/> with the weights of <paramref name="scaledValues"/> (written by a <see cref="ScaleWeightsLayer"/>).</summary>
    internal PointwiseLayer WithScaledWeights(TensorHandle input, TensorHandle scaledValues) =>
        new(Name, [input, .. Inputs[1..], scaledValues], Output, weights, _activation, width, scaledWeights: true);

    public override float Sparsity => weights.Sparsity;
    public override string KernelName => weights.KernelName;
    public override long DenseMacs => (long)Output.Length * Inputs[0].Channels;
    public override long ExecutedMacs => weights.MacsPerPixel * Output.Height * Output.Width;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        float* residual = HasResidual ? InputOf(tensors, 1) : null;
        float* values = scaledWeights ? InputOf(tensors, Inputs.Length - 1) : null;
        var strides = new PlaneStrides(InputStride(tensors), OutputStride(tensors), residual == null ? OutputStride(tensors) : InputStride(tensors, 1));
        // Where every operand's planes are padded, the padding pixels are computed too (see PixelsToCompute).
        int pixels = PointwiseKernel.PixelsToCompute(Output.Height * Output.Width, Math.Min(strides.Input, Math.Min(strides.Output, strides.Residual)), width);
        (int pixelStart, int pixelEnd, int channelStart, int channelEnd) =
            WorkSplit.PixelsOrChannels(pixels, Output.Channels, part, parts, weights.ChannelGranularity);
        if (pixelStart < pixelEnd && channelStart < channelEnd)
            PointwiseKernel.Run(weights, InputOf(tensors), OutputOf(tensors), residual, strides, pixelStart, pixelEnd - pixelStart,
                channelStart, channelEnd, _activation, width, values);
    }

    /// <summary>Output channels are split at multiples of this (the block width).</summary>
    internal int ChannelGranularity => weights.ChannelGranularity;

    internal Formats.PointwiseWeights Weights => weights;
    internal Activation Activation => _activation;

    internal override IEnumerable<Formats.PointwiseWeights> OwnedWeights => [weights];
    internal SimdWidth Width => width;

    /// <summary>
    /// Output channels [channelStart, channelEnd) of <paramref name="pixelCount"/> pixels (no residual): <paramref name="input"/>
    /// points at the first pixel of input channel 0, <paramref name="output"/> at the first of output channel 0.
    /// </summary>
    internal void RunPart(float* input, int inputStride, float* output, int outputStride, int pixelCount, int channelStart, int channelEnd) =>
        PointwiseKernel.Run(weights, input, output, null, new PlaneStrides(inputStride, outputStride, outputStride), 0, pixelCount,
            channelStart, channelEnd, _activation, width);
}

/// <summary>
/// GEMV over one pixel: a fully connected layer, or a 1x1 convolution on <c>[C,1,1]</c> (with optional residual). Dense, or
/// the sparse row-compressed GEMV when <see cref="Prepare"/> finds the weights sparse enough for it to pay.
/// </summary>
internal sealed unsafe class FullyConnectedLayer : PlannedLayer
{
    /// <summary>
    /// The gathered sparse GEMV beats the dense one from about this sparsity (PointwiseGemvBenchmarks on Zen 4: the
    /// 1024x1001 classifier 0.82x the dense time at 85%, 0.62x at 90%, 1.2x at 80%; a 576x144 SE layer breaks even near
    /// 87%), whatever lower <see cref="SparseNetworkOptions.SparseThreshold"/> the 1x1 layers use.
    /// </summary>
    public const float SparseGemvMinimumSparsity = 0.85f;

    /// <summary>
    /// The same for the permuted form of 512-bit plans (PointwiseGemvBenchmarks on Zen 5, weights hot: 1024x1001 0.75x the
    /// dense time at 70%, 0.94x at 60%; 576x144 1.04x and 48x1152 0.84x at 70%; in an inference the dense weights come
    /// from beyond L2, which favours the sparse form further).
    /// </summary>
    public const float PermutedGemvMinimumSparsity = 0.7f;

    /// <summary>
    /// The sparse GEMV is kept only while its slices run at most this many times the steps of evenly filled ones
    /// (<see cref="SparseRows.CreateIfBalanced"/>). Random 90% patterns give 1.2-2 (the longest of 16 rows against their
    /// mean); whole output channels pruned beside dense ones give 8-16.
    /// </summary>
    public const int MaximumImbalance = 4;

    /// <summary>The dense weights, until <see cref="Prepare"/>: the prepared layer keeps only the form it runs (packed or sparse rows).</summary>
    private readonly float[]? _weights;
    private readonly float[] _bias;
    private readonly float[]? _packed;
    private readonly SparseRows? _sparseRows;
    private readonly PermutedSparseRows? _permutedRows;
    private readonly Activation _activation;
    private readonly float _sparsity;

    public FullyConnectedLayer(string name, string kind, TensorHandle[] inputs, TensorHandle output, float[] weights, float[] bias, Activation activation)
        : base(name, kind, inputs, output)
    {
        _weights = weights;
        _bias = bias;
        _activation = activation;
        _sparsity = ZeroFraction(weights);
    }

    private FullyConnectedLayer(FullyConnectedLayer layer, bool sparse, SimdWidth width)
        : base(layer.Name, layer.Kind, layer.Inputs, layer.Output)
    {
        // 512-bit plans pick each step's inputs with a permute (PermutedSparseRows), others gather them (SparseRows). Either
        // pads short rows: where row lengths are very uneven (whole output channels pruned beside dense ones) most steps
        // would be padding, and the dense panels do that work without gathers or permutes.
        int outputs = layer.Output.Channels, inputs = layer.Inputs[0].Length;
        if (sparse && PermutedSparseRows.RunsAt(width))
            _permutedRows = PermutedSparseRows.CreateIfSmaller(layer._weights!, outputs, inputs);
        else if (sparse) _sparseRows = SparseRows.CreateIfBalanced(layer._weights!, outputs, inputs, MaximumImbalance);
        if (_sparseRows is null && _permutedRows is null) _packed = FullyConnectedKernel.Pack(layer._weights!, layer.Output.Channels, layer.Inputs[0].Length);
        _bias = layer._bias;
        _activation = layer._activation;
        _sparsity = layer._sparsity;
    }

    public override float Sparsity => _sparsity;

    /// <summary>The input is read as one flat vector.</summary>
    public override bool HandlesPlaneStrides => false;
    public override string KernelName => _permutedRows != null ? "sparse GEMV, permuted" : _sparseRows != null ? "sparse GEMV" : "dense GEMV";
    public override long DenseMacs => (long)Output.Channels * Inputs[0].Length;
    public override long ExecutedMacs => _permutedRows?.NonZeroCount ?? _sparseRows?.NonZeroCount ?? DenseMacs;

    public override PlannedLayer Prepare(SparseNetworkOptions options)
    {
        if (_weights is null) return this;
        SimdWidth width = SimdSupport.Resolve(options.MaxSimdWidth);
        float minimum = PermutedSparseRows.RunsAt(width) ? PermutedGemvMinimumSparsity : SparseGemvMinimumSparsity;
        return new FullyConnectedLayer(this, sparse: _sparsity >= Math.Max(options.SparseThreshold, minimum), width);
    }

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels, part, parts, FullyConnectedKernel.PanelOutputs);
        float* residual = Inputs.Length > 1 ? InputOf(tensors, 1) : null;
        if (_permutedRows != null)
            FullyConnectedKernel.RunPermuted<TVec>(InputOf(tensors), _permutedRows, Address(_bias), residual, OutputOf(tensors), start, end, _activation);
        else if (_sparseRows != null)
            FullyConnectedKernel.RunSparse<TVec>(InputOf(tensors), _sparseRows, Address(_bias), residual, OutputOf(tensors), start, end, _activation);
        else if (_packed != null)
            FullyConnectedKernel.Run<TVec>(InputOf(tensors), Address(_packed), Address(_bias), residual, OutputOf(tensors),
                Inputs[0].Length, Output.Channels, start, end, _activation);
        else throw new InvalidOperationException($"Layer '{Name}' was not prepared.");
    }
}

internal sealed unsafe class GlobalAveragePoolLayer(string name, TensorHandle input, TensorHandle output)
    : PlannedLayer(name, "GlobalAveragePool", [input], output)
{
    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels, part, parts);
        PoolingKernel.GlobalAverage<TVec>(InputOf(tensors), OutputOf(tensors), Inputs[0].Height * Inputs[0].Width, InputStride(tensors), start, end);
    }
}

/// <summary>Same-shape add or multiply with a fused activation, split over elements.</summary>
internal sealed unsafe class BinaryLayer<TOperation>(string name, string kind, TensorHandle a, TensorHandle b, TensorHandle output, Activation activation)
    : PlannedLayer(name, kind, [a, b], output) where TOperation : struct, IBinaryOperation
{
    private readonly Activation _activation = activation;

    public override bool IsElementwise => true;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels * OutputStride(tensors), part, parts, 16);
        ElementwiseKernels.Binary<TVec, TOperation>(InputOf(tensors), InputOf(tensors, 1), OutputOf(tensors), start, end, _activation);
    }
}

internal sealed unsafe class ScaleChannelsLayer(string name, TensorHandle input, TensorHandle scale, TensorHandle output)
    : PlannedLayer(name, "Multiply", [input, scale], output)
{
    public override string KernelName => "per-channel scale";

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels, part, parts);
        ElementwiseKernels.ScaleChannels<TVec>(InputOf(tensors), InputStride(tensors), InputOf(tensors, 1), OutputOf(tensors), OutputStride(tensors),
            Output.Height * Output.Width, start, end);
    }
}

internal sealed unsafe class ActivationLayer(string name, TensorHandle input, TensorHandle output, Activation activation)
    : PlannedLayer(name, "Activation", [input], output)
{
    private readonly Activation _activation = activation;

    public override string KernelName => _activation.ToString();
    public override bool IsElementwise => true;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(Output.Channels * OutputStride(tensors), part, parts, 16);
        ActivationPass.Apply<TVec>(InputOf(tensors) + start, OutputOf(tensors) + start, end - start, _activation);
    }
}

internal sealed unsafe class SoftmaxLayer(string name, TensorHandle input, TensorHandle output)
    : PlannedLayer(name, "Softmax", [input], output)
{
    /// <summary>One reduction over the whole tensor.</summary>
    public override bool HandlesPlaneStrides => false;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        // A single reduction over ~1000 values: not worth splitting.
        if (part == 0) SoftmaxKernel.Run<TVec>(InputOf(tensors), OutputOf(tensors), Output.Length);
    }
}
