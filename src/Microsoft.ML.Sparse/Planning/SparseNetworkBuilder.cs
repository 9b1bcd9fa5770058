namespace Microsoft.ML.Sparse;

/// <summary>
/// Assembles a CHW network layer by layer. Weights are copied (and, for 1x1 layers, converted to the sparse format) at <see cref="Build"/>.
/// All tensors are CHW without a batch dimension; shapes are checked as layers are added.
/// </summary>
public sealed class SparseNetworkBuilder
{
    /// <summary>Starts a network whose input is a CHW tensor of the given shape.</summary>
    public SparseNetworkBuilder(int channels, int height, int width) => throw new NotImplementedException();

    /// <summary>The network input.</summary>
    public TensorHandle Input => throw new NotImplementedException();

    /// <summary>Reads the input as HWC (NHWC exporters) and transposes it to CHW; returns the CHW tensor.</summary>
    public TensorHandle TransposeHwcToChw(TensorHandle hwc) => throw new NotImplementedException();

    /// <summary>Full (groups = 1) convolution, weights OIHW <c>[outChannels, inChannels, kernelHeight, kernelWidth]</c>; used for the first layer.</summary>
    public TensorHandle Conv(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels, int kernelHeight, int kernelWidth,
        int strideHeight = 1, int strideWidth = 1, Padding padding = default, Activation activation = default, string? name = null) => throw new NotImplementedException();

    /// <summary>Depthwise convolution (groups = channels), weights <c>[channels, 1, kernelHeight, kernelWidth]</c>.</summary>
    public TensorHandle DepthwiseConv(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int kernelHeight, int kernelWidth,
        int strideHeight = 1, int strideWidth = 1, Padding padding = default, Activation activation = default, string? name = null) => throw new NotImplementedException();

    /// <summary>
    /// 1x1 convolution, weights <c>[outChannels, inChannels]</c>: SpMM when the weights are sparse enough, dense otherwise.
    /// Computes <c>activation(W x + bias + residual)</c>; <paramref name="residual"/> must have the output's shape.
    /// </summary>
    public TensorHandle Pointwise(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels,
        Activation activation = default, TensorHandle? residual = null, string? name = null) => throw new NotImplementedException();

    /// <summary>Fully connected layer over the whole flattened CHW input, weights <c>[outChannels, C*H*W]</c>; output is <c>[outChannels, 1, 1]</c>.</summary>
    public TensorHandle FullyConnected(TensorHandle x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias, int outChannels,
        Activation activation = default, string? name = null) => throw new NotImplementedException();

    /// <summary>Mean over H and W; output is <c>[C, 1, 1]</c>.</summary>
    public TensorHandle GlobalAveragePool(TensorHandle x, string? name = null) => throw new NotImplementedException();

    /// <summary>activation(a + b), same shapes.</summary>
    public TensorHandle Add(TensorHandle a, TensorHandle b, Activation activation = default, string? name = null) => throw new NotImplementedException();

    /// <summary>x * scale where scale has x's shape or is <c>[C, 1, 1]</c> (squeeze-and-excitation).</summary>
    public TensorHandle Multiply(TensorHandle x, TensorHandle scale, string? name = null) => throw new NotImplementedException();

    /// <summary>Applies an activation on its own (when it could not be fused into the previous layer).</summary>
    public TensorHandle Activate(TensorHandle x, Activation activation, string? name = null) => throw new NotImplementedException();

    /// <summary>Softmax over all elements of x (the class scores of a classifier).</summary>
    public TensorHandle Softmax(TensorHandle x, string? name = null) => throw new NotImplementedException();

    /// <summary>Plans buffers, chooses kernels and freezes the network whose result is <paramref name="output"/>.</summary>
    public SparseNetwork Build(TensorHandle output, SparseNetworkOptions? options = null) => throw new NotImplementedException();
}
