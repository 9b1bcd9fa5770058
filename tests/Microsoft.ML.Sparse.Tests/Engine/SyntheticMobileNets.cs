namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// MobileNet v1 / v2 and v3- and EfficientNet-style blocks with random weights, defined once through a <see cref="TwinBuilder"/>
/// (so they come with a scalar reference). 1x1 weights are pruned to the requested sparsity (exact zeros at random
/// positions); other weights are dense. Weights are scaled by 1/sqrt(fan-in) so activations stay O(1) through the depth.
/// Shared with the benchmark project.
/// </summary>
internal static class SyntheticMobileNets
{
    /// <summary>MobileNet v1 (Howard et al. 2017): 3x3 s2 stem, 13 depthwise-separable blocks, pool, 1000-way classifier.</summary>
    public static (TwinBuilder Twin, TensorHandle Logits, TensorHandle Output) MobileNetV1(int resolution, float widthMultiplier, float sparsity, int seed)
    {
        var random = new Random(seed);
        var twin = new TwinBuilder(3, resolution, resolution);
        TensorHandle x = Stem(twin, random, Channels(32, widthMultiplier));
        (int Channels, int Stride)[] blocks =
            [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
        foreach ((int channels, int stride) in blocks)
        {
            // TensorFlow-style SAME padding: the extra row and column of a stride-2 layer go at the end.
            x = Depthwise(twin, random, x, 3, stride, Padding.SameUpper(x.Height, x.Width, 3, 3, stride, stride), Activation.Relu6);
            x = Pointwise(twin, random, x, Channels(channels, widthMultiplier), sparsity, Activation.Relu6);
        }
        TensorHandle logits = Pointwise(twin, random, twin.GlobalAveragePool(x), 1000, sparsity, Activation.None);
        return (twin, logits, twin.Softmax(logits));
    }

    /// <summary>MobileNet v2 (Sandler et al. 2018): inverted residual blocks (expand, depthwise, linear project, skip).</summary>
    public static (TwinBuilder Twin, TensorHandle Logits, TensorHandle Output) MobileNetV2(int resolution, float widthMultiplier, float sparsity, int seed)
    {
        var random = new Random(seed);
        var twin = new TwinBuilder(3, resolution, resolution);
        TensorHandle x = Stem(twin, random, Channels(32, widthMultiplier));
        (int Expansion, int Channels, int Repeats, int Stride)[] stages =
            [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
        foreach ((int expansion, int channels, int repeats, int firstStride) in stages)
            for (int i = 0; i < repeats; i++)
            {
                int stride = i == 0 ? firstStride : 1, outChannels = Channels(channels, widthMultiplier);
                TensorHandle h = expansion == 1 ? x : Pointwise(twin, random, x, x.Channels * expansion, sparsity, Activation.Relu6);
                // PyTorch-style symmetric padding.
                h = Depthwise(twin, random, h, 3, stride, Padding.Uniform(1), Activation.Relu6);
                TensorHandle? skip = stride == 1 && x.Channels == outChannels ? x : null;
                x = Pointwise(twin, random, h, outChannels, sparsity, Activation.None, skip);
            }
        x = Pointwise(twin, random, x, Math.Max(1280, Channels(1280, widthMultiplier)), sparsity, Activation.Relu6);
        TensorHandle logits = Pointwise(twin, random, twin.GlobalAveragePool(x), 1000, sparsity, Activation.None);
        return (twin, logits, twin.Softmax(logits));
    }

    /// <summary>
    /// A MobileNet v3 block: 1x1 expand + HardSwish, 5x5 depthwise + HardSwish, squeeze-and-excitation (ReLU, HardSigmoid),
    /// linear 1x1 project, residual through an Add layer.
    /// </summary>
    public static TensorHandle MobileNetV3Block(TwinBuilder twin, Random random, TensorHandle x, int expanded, int stride, float sparsity)
    {
        TensorHandle h = Pointwise(twin, random, x, expanded, sparsity, Activation.HardSwish);
        h = Depthwise(twin, random, h, 5, stride, Padding.Uniform(2), Activation.HardSwish);
        h = SqueezeExcite(twin, random, h, Math.Max(8, expanded / 4), Activation.Relu, Activation.HardSigmoid(1f / 6f, 0.5f));
        TensorHandle y = Pointwise(twin, random, h, x.Channels, sparsity, Activation.None);
        return stride == 1 ? twin.Add(y, x) : y;
    }

    /// <summary>An EfficientNet MBConv block: expand + Swish, 3x3 depthwise + Swish, squeeze-and-excitation (Swish, Sigmoid), project, residual.</summary>
    public static TensorHandle EfficientNetBlock(TwinBuilder twin, Random random, TensorHandle x, int expansion, float sparsity)
    {
        TensorHandle h = Pointwise(twin, random, x, x.Channels * expansion, sparsity, Activation.Swish);
        h = Depthwise(twin, random, h, 3, 1, Padding.Uniform(1), Activation.Swish);
        h = SqueezeExcite(twin, random, h, Math.Max(1, x.Channels / 4), Activation.Swish, Activation.Sigmoid);
        return Pointwise(twin, random, h, x.Channels, sparsity, Activation.None, x);
    }

    /// <summary>Channels scaled by the width multiplier, rounded to a multiple of 8 (never down by more than 10%).</summary>
    public static int Channels(int channels, float multiplier)
    {
        float scaled = channels * multiplier;
        int rounded = Math.Max(8, (int)(scaled + 4) / 8 * 8);
        return rounded < 0.9f * scaled ? rounded + 8 : rounded;
    }

    /// <summary>Random weights with exactly round(sparsity * count) zeros at random positions.</summary>
    public static float[] PrunedWeights(Random random, int count, int fanIn, float sparsity)
    {
        float[] weights = ScalarReference.Random(random, count, MathF.Sqrt(3f / fanIn));
        int[] order = Enumerable.Range(0, count).ToArray();
        random.Shuffle(order);
        for (int i = 0; i < (int)Math.Round(sparsity * count); i++) weights[order[i]] = 0f;
        return weights;
    }

    public static TensorHandle Stem(TwinBuilder twin, Random random, int channels) =>
        twin.Conv(twin.Input, PrunedWeights(random, channels * 27, 27, 0f), Bias(random, channels), channels, 3, 2,
            Padding.SameUpper(twin.Input.Height, twin.Input.Width, 3, 3, 2, 2), Activation.Relu6);

    public static TensorHandle Depthwise(TwinBuilder twin, Random random, TensorHandle x, int kernel, int stride, Padding pad, Activation activation) =>
        twin.Depthwise(x, PrunedWeights(random, x.Channels * kernel * kernel, kernel * kernel, 0f), Bias(random, x.Channels), kernel, stride, pad, activation);

    public static TensorHandle Pointwise(TwinBuilder twin, Random random, TensorHandle x, int outChannels, float sparsity, Activation activation, TensorHandle? residual = null) =>
        twin.Pointwise(x, PrunedWeights(random, outChannels * x.Channels, Math.Max(1, (int)(x.Channels * (1 - sparsity))), sparsity),
            Bias(random, outChannels), outChannels, activation, residual);

    private static TensorHandle SqueezeExcite(TwinBuilder twin, Random random, TensorHandle x, int squeezed, Activation inner, Activation gate)
    {
        TensorHandle s = twin.GlobalAveragePool(x);
        s = twin.Pointwise(s, PrunedWeights(random, squeezed * x.Channels, x.Channels, 0f), Bias(random, squeezed), squeezed, inner);
        s = twin.Pointwise(s, PrunedWeights(random, x.Channels * squeezed, squeezed, 0f), Bias(random, x.Channels), x.Channels, gate);
        return twin.Multiply(x, s);
    }

    private static float[] Bias(Random random, int count) => ScalarReference.Random(random, count, 0.1f);
}
