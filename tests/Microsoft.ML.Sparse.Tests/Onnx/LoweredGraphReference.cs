using Microsoft.ML.Sparse.Onnx;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// A plain scalar interpreter of the importer's lowered, fused graph (double accumulation, no engine code). Comparing it
/// with ONNX Runtime checks the reader, constant folding, lowering and fusion independently of the engine's kernels.
/// </summary>
internal static class LoweredGraphReference
{
    /// <summary>Runs one image given in the file's layout (CHW, or HWC for NHWC models); returns the output in CHW order.</summary>
    public static float[] Run(LoweredGraph graph, float[] input)
    {
        var values = new Dictionary<string, float[]> { [graph.InputName] = input };
        var shapes = new Dictionary<string, ValueShape> { [graph.InputName] = graph.InputShape };
        foreach (var layer in graph.Layers)
        {
            float[] x = values[layer.Inputs[0]];
            ValueShape s = shapes[layer.Inputs[0]], o = layer.OutputShape;
            float[] y = layer.Kind switch
            {
                LayerKind.Conv => Conv(layer, x, s, o, layer.Residual is null ? null : values[layer.Residual]),
                LayerKind.Gemm => Gemm(layer, x),
                LayerKind.Affine => Map(x, (i, v) => layer.Activation.Apply(v * layer.Weights[i / (s.Height * s.Width)] + layer.Bias[i / (s.Height * s.Width)])),
                LayerKind.Pad => Pad(x, s, layer.Padding),
                LayerKind.GlobalAveragePool => Enumerable.Range(0, s.Channels).Select(c => (float)x.AsSpan(c * s.Height * s.Width, s.Height * s.Width).ToArray().Average(v => (double)v)).ToArray(),
                LayerKind.Add => Map(x, (i, v) => layer.Activation.Apply(v + values[layer.Inputs[1]][i])),
                LayerKind.Multiply => Multiply(x, values[layer.Inputs[1]], s),
                LayerKind.Activation => Map(x, (_, v) => layer.Activation.Apply(v)),
                LayerKind.Softmax => Softmax(x),
                LayerKind.TransposeHwcToChw => Map(x, (i, _) => x[(i % (s.Height * s.Width)) * s.Channels + i / (s.Height * s.Width)]),
                _ => throw new InvalidOperationException(layer.Kind.ToString()),
            };
            Assert.Equal(o.Length, y.Length);
            values[layer.Output] = y;
            shapes[layer.Output] = o;
        }
        return values[graph.OutputValue];
    }

    private static float[] Map(float[] x, Func<int, float, float> f)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = f(i, x[i]);
        return y;
    }

    private static float[] Conv(Layer layer, float[] x, ValueShape s, ValueShape o, float[]? residual)
    {
        int groupInputs = s.Channels / layer.Group, groupOutputs = o.Channels / layer.Group;
        var y = new float[o.Length];
        for (int oc = 0; oc < o.Channels; oc++)
        {
            int group = oc / groupOutputs;
            for (int oy = 0; oy < o.Height; oy++)
                for (int ox = 0; ox < o.Width; ox++)
                {
                    double sum = layer.Bias[oc];
                    for (int ic = 0; ic < groupInputs; ic++)
                        for (int ky = 0; ky < layer.KernelHeight; ky++)
                            for (int kx = 0; kx < layer.KernelWidth; kx++)
                            {
                                int iy = oy * layer.StrideHeight + ky - layer.Padding.Top, ix = ox * layer.StrideWidth + kx - layer.Padding.Left;
                                if (iy < 0 || iy >= s.Height || ix < 0 || ix >= s.Width) continue;
                                int channel = group * groupInputs + ic;
                                sum += (double)layer.Weights[((oc * groupInputs + ic) * layer.KernelHeight + ky) * layer.KernelWidth + kx]
                                    * x[(channel * s.Height + iy) * s.Width + ix];
                            }
                    int index = (oc * o.Height + oy) * o.Width + ox;
                    if (residual is not null) sum += residual[index];
                    y[index] = layer.Activation.Apply((float)sum);
                }
        }
        return y;
    }

    private static float[] Gemm(Layer layer, float[] x)
    {
        int outputs = layer.Bias.Length;
        var y = new float[outputs];
        for (int o = 0; o < outputs; o++)
        {
            double sum = layer.Bias[o];
            for (int k = 0; k < x.Length; k++) sum += (double)layer.Weights[o * x.Length + k] * x[k];
            y[o] = layer.Activation.Apply((float)sum);
        }
        return y;
    }

    private static float[] Pad(float[] x, ValueShape s, Padding p)
    {
        int height = s.Height + p.Top + p.Bottom, width = s.Width + p.Left + p.Right;
        var y = new float[s.Channels * height * width];
        for (int c = 0; c < s.Channels; c++)
            for (int h = 0; h < s.Height; h++)
                for (int w = 0; w < s.Width; w++)
                    y[(c * height + h + p.Top) * width + w + p.Left] = x[(c * s.Height + h) * s.Width + w];
        return y;
    }

    private static float[] Multiply(float[] x, float[] scale, ValueShape s) =>
        Map(x, (i, v) => v * (scale.Length == x.Length ? scale[i] : scale[i / (s.Height * s.Width)]));

    private static float[] Softmax(float[] x)
    {
        double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
        return Map(x, (_, v) => (float)(Math.Exp(v - max) / sum));
    }
}
