namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// Records every layer twice: into a <see cref="SparseNetworkBuilder"/> and as a step of a layer-by-layer scalar evaluator
/// (<see cref="ScalarReference"/>), so a network defined once can be checked against an independent implementation.
/// </summary>
internal sealed class TwinBuilder
{
    private readonly List<(int Output, Func<Func<TensorHandle, float[]>, float[]> Compute)> _steps = [];

    public TwinBuilder(int channels, int height, int width) => Engine = new SparseNetworkBuilder(channels, height, width);

    public SparseNetworkBuilder Engine { get; }
    public TensorHandle Input => Engine.Input;

    /// <summary>The input is HWC when the network starts with <see cref="TransposeHwcToChw"/>.</summary>
    public TensorHandle TransposeHwcToChw(TensorHandle x) =>
        Step(Engine.TransposeHwcToChw(x), get => ScalarReference.TransposeHwcToChw(get(x), x.Channels, x.Height, x.Width));

    public TensorHandle Conv(TensorHandle x, float[] w, float[] b, int outChannels, int kernel, int stride, Padding pad, Activation activation) =>
        Step(Engine.Conv(x, w, b, outChannels, kernel, kernel, stride, stride, pad, activation),
            get => ScalarReference.Conv(get(x), x.Channels, x.Height, x.Width, w, b, outChannels, kernel, kernel, stride, stride, pad, 1, activation));

    public TensorHandle Depthwise(TensorHandle x, float[] w, float[] b, int kernel, int stride, Padding pad, Activation activation) =>
        Step(Engine.DepthwiseConv(x, w, b, kernel, kernel, stride, stride, pad, activation),
            get => ScalarReference.Conv(get(x), x.Channels, x.Height, x.Width, w, b, x.Channels, kernel, kernel, stride, stride, pad, x.Channels, activation));

    public TensorHandle Pointwise(TensorHandle x, float[] w, float[] b, int outChannels, Activation activation, TensorHandle? residual = null) =>
        Step(Engine.Pointwise(x, w, b, outChannels, activation, residual),
            get => ScalarReference.Pointwise(get(x), x.Channels, x.Height * x.Width, w, b, outChannels, activation, residual is { } r ? get(r) : null));

    public TensorHandle FullyConnected(TensorHandle x, float[] w, float[] b, int outChannels, Activation activation) =>
        Step(Engine.FullyConnected(x, w, b, outChannels, activation),
            get => ScalarReference.Pointwise(get(x), x.Length, 1, w, b, outChannels, activation, null));

    public TensorHandle GlobalAveragePool(TensorHandle x) =>
        Step(Engine.GlobalAveragePool(x), get => ScalarReference.GlobalAveragePool(get(x), x.Channels, x.Height * x.Width));

    public TensorHandle Add(TensorHandle a, TensorHandle b, Activation activation = default) =>
        Step(Engine.Add(a, b, activation), get => ScalarReference.Add(get(a), get(b), activation));

    public TensorHandle Multiply(TensorHandle x, TensorHandle scale) =>
        Step(Engine.Multiply(x, scale), get => ScalarReference.Multiply(get(x), get(scale), x.Channels));

    public TensorHandle Activate(TensorHandle x, Activation activation) =>
        Step(Engine.Activate(x, activation), get => ScalarReference.Activate(get(x), activation));

    public TensorHandle Softmax(TensorHandle x) => Step(Engine.Softmax(x), get => ScalarReference.Softmax(get(x)));

    /// <summary>Evaluates the scalar reference of the layers recorded so far and returns <paramref name="output"/>.</summary>
    public float[] Evaluate(float[] input, TensorHandle output)
    {
        var values = new Dictionary<int, float[]> { [Input.Id] = input };
        foreach (var (id, compute) in _steps) values[id] = compute(t => values[t.Id]);
        return values[output.Id];
    }

    private TensorHandle Step(TensorHandle output, Func<Func<TensorHandle, float[]>, float[]> compute)
    {
        _steps.Add((output.Id, compute));
        return output;
    }
}
