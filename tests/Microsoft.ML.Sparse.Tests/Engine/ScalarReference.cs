namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// Plain, obviously correct scalar implementations of every layer (double accumulation, bounds-checked padding), the
/// yardstick for the kernels and the engine. Tensors are CHW float arrays.
/// </summary>
internal static class ScalarReference
{
    /// <summary>The activation functions written out independently of <see cref="Activation.Apply"/>.</summary>
    public static double Activate(double x, Activation a) => a.Kind switch
    {
        ActivationKind.None => x,
        ActivationKind.Relu => x > 0 ? x : 0,
        ActivationKind.Clip => Math.Min(Math.Max(x, a.Alpha), a.Beta),
        ActivationKind.HardSigmoid => Math.Clamp(a.Alpha * x + a.Beta, 0, 1),
        ActivationKind.HardSwish => x * Math.Clamp(x / 6 + 0.5, 0, 1),
        ActivationKind.Sigmoid => 1 / (1 + Math.Exp(-x)),
        ActivationKind.Swish => x / (1 + Math.Exp(-x)),
        _ => throw new ArgumentOutOfRangeException(nameof(a)),
    };

    /// <summary>Grouped convolution: weights <c>[Cout, Cin / groups, kh, kw]</c>; depthwise is groups = Cin = Cout.</summary>
    public static float[] Conv(float[] x, int channels, int height, int width, float[] weights, float[] bias, int outChannels,
        int kernelHeight, int kernelWidth, int strideHeight, int strideWidth, Padding pad, int groups, Activation activation)
    {
        int outHeight = (height + pad.Top + pad.Bottom - kernelHeight) / strideHeight + 1;
        int outWidth = (width + pad.Left + pad.Right - kernelWidth) / strideWidth + 1;
        int inPerGroup = channels / groups, outPerGroup = outChannels / groups;
        var y = new float[outChannels * outHeight * outWidth];
        for (int oc = 0; oc < outChannels; oc++)
        {
            int group = oc / outPerGroup;
            for (int oy = 0; oy < outHeight; oy++)
                for (int ox = 0; ox < outWidth; ox++)
                {
                    double sum = bias.Length == 0 ? 0 : bias[oc];
                    for (int i = 0; i < inPerGroup; i++)
                        for (int ky = 0; ky < kernelHeight; ky++)
                            for (int kx = 0; kx < kernelWidth; kx++)
                            {
                                int iy = oy * strideHeight + ky - pad.Top, ix = ox * strideWidth + kx - pad.Left;
                                if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
                                int ic = group * inPerGroup + i;
                                sum += (double)weights[((oc * inPerGroup + i) * kernelHeight + ky) * kernelWidth + kx] * x[(ic * height + iy) * width + ix];
                            }
                    y[(oc * outHeight + oy) * outWidth + ox] = (float)Activate(sum, activation);
                }
        }
        return y;
    }

    /// <summary>1x1 convolution <c>activation(W x + bias + residual)</c>, weights <c>[Cout, Cin]</c>.</summary>
    public static float[] Pointwise(float[] x, int channels, int pixels, float[] weights, float[] bias, int outChannels, Activation activation, float[]? residual)
    {
        var y = new float[outChannels * pixels];
        for (int oc = 0; oc < outChannels; oc++)
            for (int p = 0; p < pixels; p++)
            {
                double sum = bias.Length == 0 ? 0 : bias[oc];
                for (int ic = 0; ic < channels; ic++) sum += (double)weights[oc * channels + ic] * x[ic * pixels + p];
                if (residual != null) sum += residual[oc * pixels + p];
                y[oc * pixels + p] = (float)Activate(sum, activation);
            }
        return y;
    }

    public static float[] GlobalAveragePool(float[] x, int channels, int pixels)
    {
        var y = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int p = 0; p < pixels; p++) sum += x[c * pixels + p];
            y[c] = (float)(sum / pixels);
        }
        return y;
    }

    /// <summary>Same-shape add with activation.</summary>
    public static float[] Add(float[] a, float[] b, Activation activation) => a.Select((v, i) => (float)Activate((double)v + b[i], activation)).ToArray();

    /// <summary>x * scale, scale the same shape or one value per channel.</summary>
    public static float[] Multiply(float[] x, float[] scale, int channels)
    {
        int pixels = x.Length / channels;
        return x.Select((v, i) => v * (scale.Length == x.Length ? scale[i] : scale[i / pixels])).ToArray();
    }

    public static float[] Activate(float[] x, Activation activation) => x.Select(v => (float)Activate(v, activation)).ToArray();

    public static float[] Softmax(float[] x)
    {
        double max = x.Max();
        double[] e = x.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => (float)(v / sum)).ToArray();
    }

    public static float[] TransposeHwcToChw(float[] hwc, int channels, int height, int width)
    {
        var chw = new float[hwc.Length];
        for (int c = 0; c < channels; c++)
            for (int p = 0; p < height * width; p++) chw[c * height * width + p] = hwc[p * channels + c];
        return chw;
    }

    /// <summary>Uniform values in [-1, 1).</summary>
    public static float[] Random(Random random, int count, float scale = 1f)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }

    /// <summary>Random weights W[rows, columns] where each block of <paramref name="blockWidth"/> rows shares its zero columns.</summary>
    public static float[] BlockSparse(Random random, int rows, int columns, int blockWidth, float sparsity)
    {
        float[] weights = Random(random, rows * columns);
        for (int r0 = 0; r0 < rows; r0 += blockWidth)
            for (int k = 0; k < columns; k++)
                if (random.NextSingle() < sparsity)
                    for (int r = r0; r < Math.Min(rows, r0 + blockWidth); r++) weights[r * columns + k] = 0f;
        return weights;
    }
}
