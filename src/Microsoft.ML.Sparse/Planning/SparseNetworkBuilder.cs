using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// Assembles a CHW network layer by layer. Weights are copied when a layer is added (and, for 1x1 layers, converted to the
/// sparse format at <see cref="Build"/>). All tensors are CHW without a batch dimension; shapes are checked as layers are
/// added. A builder is not thread-safe; the networks it builds are immutable.
/// </summary>
public sealed class SparseNetworkBuilder
{
    private readonly List<TensorHandle> _tensors = [];
    private readonly List<PlannedLayer> _layers = [];

    /// <summary>Starts a network whose input is a CHW tensor of the given shape.</summary>
    public SparseNetworkBuilder(int channels, int height, int width)
    {
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"The input shape must be positive, got [{channels}, {height}, {width}].");
        Input = NewTensor(channels, height, width);
    }

    /// <summary>The network input.</summary>
    public TensorHandle Input { get; }

    /// <summary>Reads the input as HWC (NHWC exporters) and transposes it to CHW; returns the CHW tensor.</summary>
    /// <remarks><paramref name="hwc"/> carries the logical (C, H, W) shape; only its memory order is HWC.</remarks>
    public TensorHandle TransposeHwcToChw(TensorHandle hwc)
    {
        string layer = LayerName(null, "TransposeHwcToChw");
        Check(hwc, layer);
        return Add(output => new TransposeLayer(layer, hwc, output), hwc.Channels, hwc.Height, hwc.Width);
    }

    /// <summary>Full (groups = 1) convolution, weights OIHW <c>[outChannels, inChannels, kernelHeight, kernelWidth]</c>; used for the first layer.</summary>
    public TensorHandle Conv(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int kernelHeight, int kernelWidth,
        int strideHeight = 1, int strideWidth = 1, Padding padding = default, Activation activation = default, string? name = null)
    {
        string layer = LayerName(name, "Conv");
        Check(x, layer);
        ConvGeometry g = Geometry(layer, x, kernelHeight, kernelWidth, strideHeight, strideWidth, padding);
        if ((long)x.Channels * g.Taps > DirectConvKernel.MaxTaps)
            throw new NotSupportedException($"Layer '{layer}': a full convolution over {x.Channels} channels with a {kernelHeight}x{kernelWidth} kernel has "
                + $"{(long)x.Channels * g.Taps} taps; the direct kernel (meant for first layers) supports at most {DirectConvKernel.MaxTaps}.");
        CheckWeights(layer, weights, bias, outChannels, (long)outChannels * x.Channels * kernelHeight * kernelWidth, $"[{outChannels}, {x.Channels}, {kernelHeight}, {kernelWidth}]");
        float[] w = PlannedLayer.Pin(weights), b = PinBias(bias, outChannels);
        return Add(output => new ConvLayer(layer, x, output, w, b, g, activation), outChannels, g.OutHeight, g.OutWidth);
    }

    /// <summary>Depthwise convolution (groups = channels), weights <c>[channels, 1, kernelHeight, kernelWidth]</c>.</summary>
    public TensorHandle DepthwiseConv(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int kernelHeight, int kernelWidth,
        int strideHeight = 1, int strideWidth = 1, Padding padding = default, Activation activation = default, string? name = null)
    {
        string layer = LayerName(name, "Depthwise");
        Check(x, layer);
        ConvGeometry g = Geometry(layer, x, kernelHeight, kernelWidth, strideHeight, strideWidth, padding);
        CheckWeights(layer, weights, bias, x.Channels, (long)x.Channels * kernelHeight * kernelWidth, $"[{x.Channels}, 1, {kernelHeight}, {kernelWidth}]");
        float[] w = PlannedLayer.Pin(weights), b = PinBias(bias, x.Channels);
        return Add(output => new DepthwiseLayer(layer, x, output, w, b, g, activation), x.Channels, g.OutHeight, g.OutWidth);
    }

    /// <summary>
    /// 1x1 convolution, weights <c>[outChannels, inChannels]</c>: SpMM when the weights are sparse enough, dense otherwise
    /// (a GEMV when the tensor is a single pixel). Computes <c>activation(W x + bias + residual)</c>; <paramref name="residual"/>
    /// must have the output's shape.
    /// </summary>
    public TensorHandle Pointwise(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels,
        Activation activation = default, TensorHandle? residual = null, string? name = null) =>
        PointwiseOwned(x, weights.ToArray(), bias, outChannels, activation, residual, name);

    /// <summary>
    /// <see cref="Pointwise"/> keeping <paramref name="weights"/> itself until <see cref="Build"/> converts it (the importer
    /// hands over arrays nobody else uses: one copy of the model's 1x1 weights less at load).
    /// </summary>
    internal TensorHandle PointwiseOwned(TensorHandle x, float[] weights, ReadOnlySpan<float> bias, int outChannels,
        Activation activation = default, TensorHandle? residual = null, string? name = null)
    {
        string layer = LayerName(name, "Pointwise");
        Check(x, layer);
        CheckWeights(layer, weights, bias, outChannels, (long)outChannels * x.Channels, $"[{outChannels}, {x.Channels}]");
        if (residual is { } r)
        {
            Check(r, layer);
            RequireShape(layer, "residual", r, outChannels, x.Height, x.Width);
        }
        float[] b = PinBias(bias, outChannels);
        return Add(output => new PointwiseSpec(layer, x, output, weights, b, activation, residual), outChannels, x.Height, x.Width);
    }

    /// <summary>Fully connected layer over the whole flattened CHW input, weights <c>[outChannels, C*H*W]</c>; output is <c>[outChannels, 1, 1]</c>.</summary>
    public TensorHandle FullyConnected(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels,
        Activation activation = default, string? name = null) =>
        FullyConnectedOwned(x, weights.ToArray(), bias, outChannels, activation, name);

    /// <summary><see cref="FullyConnected"/> keeping <paramref name="weights"/> itself until <see cref="Build"/> (as <see cref="PointwiseOwned"/>).</summary>
    internal TensorHandle FullyConnectedOwned(TensorHandle x, float[] weights, ReadOnlySpan<float> bias, int outChannels,
        Activation activation = default, string? name = null)
    {
        string layer = LayerName(name, "FullyConnected");
        Check(x, layer);
        CheckWeights(layer, weights, bias, outChannels, (long)outChannels * x.Length, $"[{outChannels}, {x.Length}]");
        float[] b = PinBias(bias, outChannels);
        return Add(output => new FullyConnectedLayer(layer, "FullyConnected", [x], output, weights, b, activation), outChannels, 1, 1);
    }

    /// <summary>Mean over H and W; output is <c>[C, 1, 1]</c>.</summary>
    public TensorHandle GlobalAveragePool(TensorHandle x, string? name = null)
    {
        string layer = LayerName(name, "GlobalAveragePool");
        Check(x, layer);
        return Add(output => new GlobalAveragePoolLayer(layer, x, output), x.Channels, 1, 1);
    }

    /// <summary>activation(a + b), same shapes.</summary>
    public TensorHandle Add(TensorHandle a, TensorHandle b, Activation activation = default, string? name = null)
    {
        string layer = LayerName(name, "Add");
        Check(a, layer);
        Check(b, layer);
        RequireShape(layer, "second operand", b, a.Channels, a.Height, a.Width);
        return Add(output => new BinaryLayer<AddOperation>(layer, "Add", a, b, output, activation), a.Channels, a.Height, a.Width);
    }

    /// <summary>x * scale where scale has x's shape or is <c>[C, 1, 1]</c> (squeeze-and-excitation).</summary>
    public TensorHandle Multiply(TensorHandle x, TensorHandle scale, string? name = null)
    {
        string layer = LayerName(name, "Multiply");
        Check(x, layer);
        Check(scale, layer);
        if (scale.Channels == x.Channels && scale.Height == 1 && scale.Width == 1)
            return Add(output => new ScaleChannelsLayer(layer, x, scale, output), x.Channels, x.Height, x.Width);
        RequireShape(layer, "scale", scale, x.Channels, x.Height, x.Width);
        return Add(output => new BinaryLayer<MultiplyOperation>(layer, "Multiply", x, scale, output, default), x.Channels, x.Height, x.Width);
    }

    /// <summary>Applies an activation on its own (when it could not be fused into the previous layer).</summary>
    public TensorHandle Activate(TensorHandle x, Activation activation, string? name = null)
    {
        string layer = LayerName(name, "Activation");
        Check(x, layer);
        return Add(output => new ActivationLayer(layer, x, output, activation), x.Channels, x.Height, x.Width);
    }

    /// <summary>Softmax over all elements of x (the class scores of a classifier).</summary>
    public TensorHandle Softmax(TensorHandle x, string? name = null)
    {
        string layer = LayerName(name, "Softmax");
        Check(x, layer);
        return Add(output => new SoftmaxLayer(layer, x, output), x.Channels, x.Height, x.Width);
    }

    /// <summary>
    /// Plans buffers, chooses kernels and freezes the network whose result is <paramref name="output"/>; layers that do not
    /// contribute to it are dropped. The builder stays usable.
    /// </summary>
    public SparseNetwork Build(TensorHandle output, SparseNetworkOptions? options = null)
    {
        Check(output, "Build");
        options ??= new SparseNetworkOptions();
        if (options.Threads < 1) throw new ArgumentException($"SparseNetworkOptions.Threads must be at least 1, got {options.Threads}.", nameof(options));
        if (options.SparseThreshold is < 0f or > 1f || float.IsNaN(options.SparseThreshold))
            throw new ArgumentException($"SparseNetworkOptions.SparseThreshold must be in [0, 1], got {options.SparseThreshold}.", nameof(options));
        var needed = new bool[_tensors.Count];
        needed[output.Id] = true;
        var kept = new List<PlannedLayer>();
        for (int i = _layers.Count - 1; i >= 0; i--)
        {
            if (!needed[_layers[i].Output.Id]) continue;
            kept.Add(_layers[i]);
            foreach (TensorHandle input in _layers[i].Inputs) needed[input.Id] = true;
        }
        kept.Reverse();
        var snapshot = new SparseNetworkOptions
        {
            Threads = options.Threads, SparseThreshold = options.SparseThreshold, MaxSimdWidth = options.MaxSimdWidth, FuseLayers = options.FuseLayers,
        };
        PlannedLayer[] prepared = kept.Select(layer => layer.Prepare(snapshot)).ToArray();
        int tensorCount = _tensors.Count;
        if (snapshot.FuseLayers)
        {
            prepared = ChannelSplitBottleneckLayer.Fuse(prepared, output.Id, snapshot, ref tensorCount);
            prepared = PointwiseDepthwisePair.Fuse(prepared, output.Id, snapshot.Threads);
            prepared = SqueezeExcitationFolding.Fuse(prepared, output.Id, ref tensorCount);
        }
        return new SparseNetwork(prepared, Input, output, tensorCount, snapshot);
    }

    /// <summary>Largest tensor, in floats (2 GiB): lengths and arena offsets are 32-bit.</summary>
    internal const int MaxTensorFloats = int.MaxValue / 4;

    private TensorHandle NewTensor(int channels, int height, int width)
    {
        if ((long)channels * height * width > MaxTensorFloats)
            throw new NotSupportedException($"A tensor of [{channels}, {height}, {width}] has {(long)channels * height * width} floats; at most {MaxTensorFloats} are supported.");
        var tensor = new TensorHandle(_tensors.Count, channels, height, width);
        _tensors.Add(tensor);
        return tensor;
    }

    private TensorHandle Add(Func<TensorHandle, PlannedLayer> create, int channels, int height, int width)
    {
        TensorHandle output = NewTensor(channels, height, width);
        _layers.Add(create(output));
        return output;
    }

    private string LayerName(string? name, string kind) => name ?? $"{kind}_{_layers.Count}";

    /// <summary>A handle must come from this builder, with the shape the builder gave it.</summary>
    private void Check(TensorHandle x, string layer)
    {
        if (x.Id < 0 || x.Id >= _tensors.Count || _tensors[x.Id] != x)
            throw new ArgumentException($"Layer '{layer}': tensor {Format(x)} (id {x.Id}) was not created by this builder.");
    }

    private static void RequireShape(string layer, string what, TensorHandle actual, int channels, int height, int width)
    {
        if (actual.Channels != channels || actual.Height != height || actual.Width != width)
            throw new ArgumentException($"Layer '{layer}': {what} has shape {Format(actual)} but [{channels}, {height}, {width}] is required.");
    }

    private static string Format(TensorHandle x) => $"[{x.Channels}, {x.Height}, {x.Width}]";

    private static ConvGeometry Geometry(string layer, TensorHandle x, int kernelHeight, int kernelWidth, int strideHeight, int strideWidth, Padding padding)
    {
        if (kernelHeight < 1 || kernelWidth < 1 || strideHeight < 1 || strideWidth < 1)
            throw new ArgumentException($"Layer '{layer}': kernel {kernelHeight}x{kernelWidth} and stride {strideHeight}x{strideWidth} must be positive.");
        if (padding.Top < 0 || padding.Left < 0 || padding.Bottom < 0 || padding.Right < 0)
            throw new ArgumentException($"Layer '{layer}': padding {padding} must not be negative.");
        var g = new ConvGeometry(x.Height, x.Width, kernelHeight, kernelWidth, strideHeight, strideWidth, padding);
        if (g.PaddedHeight < kernelHeight || g.PaddedWidth < kernelWidth)
            throw new ArgumentException($"Layer '{layer}': kernel {kernelHeight}x{kernelWidth} is larger than the padded input {Format(x)} with {padding}.");
        // A stride beyond the padded input only ever reads position 0, and its row arithmetic (output row x stride) overflows int.
        if (strideHeight > g.PaddedHeight || strideWidth > g.PaddedWidth)
            throw new ArgumentException($"Layer '{layer}': stride {strideHeight}x{strideWidth} is larger than the padded input {Format(x)} with {padding}.");
        return g;
    }

    private static void CheckWeights(string layer, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, long expected, string shape)
    {
        if (outChannels <= 0) throw new ArgumentException($"Layer '{layer}': outChannels must be positive, got {outChannels}.");
        if (weights.Length != expected)
            throw new ArgumentException($"Layer '{layer}': weights have {weights.Length} values but shape {shape} needs {expected}.");
        if (bias.Length != 0 && bias.Length != outChannels)
            throw new ArgumentException($"Layer '{layer}': bias has {bias.Length} values but {outChannels} (or none) are required.");
    }

    private static float[] PinBias(ReadOnlySpan<float> bias, int outChannels) => bias.IsEmpty ? GC.AllocateArray<float>(outChannels, pinned: true) : PlannedLayer.Pin(bias);
}
