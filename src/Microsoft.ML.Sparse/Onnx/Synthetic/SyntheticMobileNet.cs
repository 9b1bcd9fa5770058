using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Onnx.Synthetic;
using static Microsoft.ML.Sparse.Onnx.Synthetic.OnnxGraphBuilder;

namespace Microsoft.ML.Sparse;

/// <summary>
/// Builds random-weight MobileNet-family ONNX models in the shapes real exporters produce (v1, v2, v3 small/large,
/// EfficientNet-B0), with switches for exporter quirks, for tests, demos and benchmarks. Weights are He-scaled so
/// activations keep a useful range through the whole network; the classes they predict mean nothing.
/// </summary>
public static class SyntheticMobileNet
{
    /// <summary>Serialized ONNX model bytes for <paramref name="options"/> (deterministic for a given seed).</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public static byte[] Create(SyntheticMobileNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        return new Generator(options).Build().ToByteArray();
    }

    private static void Validate(SyntheticMobileNetOptions options)
    {
        if (options.Opset is < 7 or > 21) throw new ArgumentException($"Opset {options.Opset} is not supported; use 7 to 21.", nameof(options));
        if (options.WidthMultiplier is <= 0f or > 4f) throw new ArgumentException($"WidthMultiplier {options.WidthMultiplier} must be in (0, 4].", nameof(options));
        if (options.Resolution < 32) throw new ArgumentException($"Resolution {options.Resolution} must be at least 32.", nameof(options));
        if (options.Classes < 1) throw new ArgumentException($"Classes {options.Classes} must be positive.", nameof(options));
        if (options.PointwiseSparsity is < 0f or > 1f) throw new ArgumentException($"PointwiseSparsity {options.PointwiseSparsity} must be in [0, 1].", nameof(options));
    }

    private enum Act { None, Relu, Relu6, HardSwish, Swish }

    /// <summary>One inverted-residual / MBConv / depthwise-separable block: kernel, expanded channels, output channels, squeeze-excitation, activation, stride.</summary>
    private readonly record struct Block(int Kernel, int Expanded, int Output, bool SqueezeExcite, Act Act, int Stride);

    private sealed class Generator(SyntheticMobileNetOptions options)
    {
        private const int FloatType = (int)TensorProto.Types.DataType.Float;
        private readonly OnnxGraphBuilder _graph = new("synthetic_" + options.Architecture, options.Opset);
        private readonly Random _random = new(options.Seed);
        private string? _clipMin, _clipMax;

        public ModelProto Build()
        {
            object batch = options.DynamicBatch ? "N" : 1;
            string x = options.InputName;
            if (options.NhwcInput)
            {
                _graph.Input(x, FloatType, batch, options.Resolution, options.Resolution, 3);
                x = _graph.Node("Transpose", [x], "input_to_nchw", Ints("perm", 0, 3, 1, 2));
            }
            else
            {
                _graph.Input(x, FloatType, batch, 3, options.Resolution, options.Resolution);
            }

            x = options.Architecture switch
            {
                SyntheticArchitecture.MobileNetV1 => MobileNetV1(x),
                SyntheticArchitecture.MobileNetV2 => MobileNetV2(x),
                SyntheticArchitecture.MobileNetV3Small => MobileNetV3(x, V3Small, headChannels: 1024),
                SyntheticArchitecture.MobileNetV3Large => MobileNetV3(x, V3Large, headChannels: 1280),
                SyntheticArchitecture.EfficientNetB0 => EfficientNetB0(x),
                _ => throw new ArgumentException($"Architecture {options.Architecture} is not supported.", nameof(options)),
            };
            if (options.Softmax) x = _graph.Node("Softmax", [x], "softmax", Int("axis", 1));
            _graph.Graph.Node[^1].Output[0] = options.OutputName;
            _graph.Output(options.OutputName, FloatType, batch, options.Classes);

            long irVersion = IrVersionFor(options.Opset);
            if (options.SparseInitializers) irVersion = Math.Max(irVersion, 6);
            return _graph.ToModel(irVersion, "Microsoft.ML.Sparse.SyntheticMobileNet");
        }

        /// <summary>The IR version ONNX released alongside an opset (IR 4 at least: older IRs require initializers to be graph inputs).</summary>
        private static long IrVersionFor(int opset) => opset switch
        {
            <= 9 => 4,
            10 => 5,
            11 => 6,
            <= 14 => 7,
            <= 18 => 8,
            <= 20 => 9,
            _ => 10,
        };

        private int Scaled(int channels) => MakeDivisible(channels * options.WidthMultiplier);

        private static int MakeDivisible(float value, int divisor = 8)
        {
            int rounded = Math.Max(divisor, (int)(value + divisor / 2f) / divisor * divisor);
            return rounded < 0.9f * value ? rounded + divisor : rounded;
        }

        // ---- architectures ----

        private string MobileNetV1(string x)
        {
            int channels = Scaled(32);
            x = ConvUnit(x, 3, channels, 3, 2, 1, Act.Relu6, "stem");
            (int Output, int Stride)[] blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
            foreach (var (output, stride) in blocks)
            {
                x = ConvUnit(x, channels, channels, 3, stride, channels, Act.Relu6, "depthwise");
                int outChannels = Scaled(output);
                x = ConvUnit(x, channels, outChannels, 1, 1, 1, Act.Relu6, "pointwise");
                channels = outChannels;
            }
            return Head(x, channels, hiddenChannels: 0);
        }

        private string MobileNetV2(string x)
        {
            int channels = Scaled(32);
            x = ConvUnit(x, 3, channels, 3, 2, 1, Act.Relu6, "stem");
            (int Expansion, int Output, int Repeats, int Stride)[] stages = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
            foreach (var (expansion, output, repeats, stride) in stages)
            {
                for (int i = 0; i < repeats; i++)
                {
                    var block = new Block(3, channels * expansion, Scaled(output), false, Act.Relu6, i == 0 ? stride : 1);
                    x = InvertedResidual(x, channels, block, squeezeChannels: 0);
                    channels = block.Output;
                }
            }
            int last = Math.Max(1280, Scaled(1280));
            x = ConvUnit(x, channels, last, 1, 1, 1, Act.Relu6, "last_conv");
            return Head(x, last, hiddenChannels: 0);
        }

        private static readonly Block[] V3Small =
        [
            new(3, 16, 16, true, Act.Relu, 2), new(3, 72, 24, false, Act.Relu, 2), new(3, 88, 24, false, Act.Relu, 1),
            new(5, 96, 40, true, Act.HardSwish, 2), new(5, 240, 40, true, Act.HardSwish, 1), new(5, 240, 40, true, Act.HardSwish, 1),
            new(5, 120, 48, true, Act.HardSwish, 1), new(5, 144, 48, true, Act.HardSwish, 1), new(5, 288, 96, true, Act.HardSwish, 2),
            new(5, 576, 96, true, Act.HardSwish, 1), new(5, 576, 96, true, Act.HardSwish, 1),
        ];

        private static readonly Block[] V3Large =
        [
            new(3, 16, 16, false, Act.Relu, 1), new(3, 64, 24, false, Act.Relu, 2), new(3, 72, 24, false, Act.Relu, 1),
            new(5, 72, 40, true, Act.Relu, 2), new(5, 120, 40, true, Act.Relu, 1), new(5, 120, 40, true, Act.Relu, 1),
            new(3, 240, 80, false, Act.HardSwish, 2), new(3, 200, 80, false, Act.HardSwish, 1), new(3, 184, 80, false, Act.HardSwish, 1),
            new(3, 184, 80, false, Act.HardSwish, 1), new(3, 480, 112, true, Act.HardSwish, 1), new(3, 672, 112, true, Act.HardSwish, 1),
            new(5, 672, 160, true, Act.HardSwish, 2), new(5, 960, 160, true, Act.HardSwish, 1), new(5, 960, 160, true, Act.HardSwish, 1),
        ];

        private string MobileNetV3(string x, Block[] blocks, int headChannels)
        {
            int channels = Scaled(16);
            x = ConvUnit(x, 3, channels, 3, 2, 1, Act.HardSwish, "stem");
            foreach (var config in blocks)
            {
                int expanded = Scaled(config.Expanded);
                var block = config with { Expanded = expanded, Output = Scaled(config.Output) };
                x = InvertedResidual(x, channels, block, squeezeChannels: config.SqueezeExcite ? MakeDivisible(expanded / 4f) : 0);
                channels = block.Output;
            }
            int last = Scaled(blocks[^1].Expanded);
            x = ConvUnit(x, channels, last, 1, 1, 1, Act.HardSwish, "last_conv");
            return Head(x, last, hiddenChannels: Scaled(headChannels));
        }

        private string EfficientNetB0(string x)
        {
            int channels = Scaled(32);
            x = ConvUnit(x, 3, channels, 3, 2, 1, Act.Swish, "stem");
            (int Expansion, int Kernel, int Stride, int Output, int Repeats)[] stages = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)];
            foreach (var (expansion, kernel, stride, output, repeats) in stages)
            {
                for (int i = 0; i < repeats; i++)
                {
                    var block = new Block(kernel, channels * expansion, Scaled(output), true, Act.Swish, i == 0 ? stride : 1);
                    // EfficientNet squeezes to a quarter of the block's input channels, not of the expanded ones.
                    x = InvertedResidual(x, channels, block, squeezeChannels: Math.Max(1, channels / 4));
                    channels = block.Output;
                }
            }
            int last = Scaled(1280);
            x = ConvUnit(x, channels, last, 1, 1, 1, Act.Swish, "last_conv");
            return Head(x, last, hiddenChannels: 0);
        }

        // ---- building blocks ----

        /// <summary>Expansion 1x1 (skipped when nothing expands), depthwise kxk, optional squeeze-excitation, linear 1x1 projection, residual Add when shapes allow.</summary>
        private string InvertedResidual(string input, int inChannels, Block block, int squeezeChannels)
        {
            string x = input;
            if (block.Expanded != inChannels) x = ConvUnit(x, inChannels, block.Expanded, 1, 1, 1, block.Act, "expand");
            x = ConvUnit(x, block.Expanded, block.Expanded, block.Kernel, block.Stride, block.Expanded, block.Act, "depthwise");
            if (squeezeChannels > 0) x = SqueezeExcite(x, block.Expanded, squeezeChannels);
            bool residual = block.Stride == 1 && inChannels == block.Output;
            // A smaller projection gain keeps the variance from doubling at every residual Add.
            x = ConvUnit(x, block.Expanded, block.Output, 1, 1, 1, Act.None, "project", gain: residual ? 0.5f : 1f);
            return residual ? _graph.Node("Add", [input, x], "residual_add") : x;
        }

        /// <summary>x * gate(W2 act(W1 avgpool(x))): HardSigmoid gate after ReLU for v3, Sigmoid after Swish for EfficientNet.</summary>
        private string SqueezeExcite(string x, int channels, int squeezeChannels)
        {
            bool efficientNet = options.Architecture == SyntheticArchitecture.EfficientNetB0;
            string pooled = _graph.Node("GlobalAveragePool", [x], "se_pool");
            string squeezed = ConvUnit(pooled, channels, squeezeChannels, 1, 1, 1, efficientNet ? Act.Swish : Act.Relu, "se_reduce", batchNorm: false);
            // A positive bias centres the gates near 0.85 so a stack of them does not shrink activations to nothing.
            string excited = ConvUnit(squeezed, squeezeChannels, channels, 1, 1, 1, Act.None, "se_expand", batchNorm: false, biasMean: 2f);
            string gate = efficientNet
                ? _graph.Node("Sigmoid", [excited], "se_gate")
                : _graph.Node("HardSigmoid", [excited], "se_gate", Float("alpha", 1f / 6f), Float("beta", 0.5f));
            return _graph.Node("Mul", [x, gate], "se_scale");
        }

        /// <summary>Global pooling, flatten, optional hidden layer (v3) and the classifier.</summary>
        private string Head(string x, int channels, int hiddenChannels)
        {
            x = _graph.Node("GlobalAveragePool", [x], "pool");
            if (options.Classifier == SyntheticClassifier.Conv1x1)
            {
                if (hiddenChannels > 0)
                {
                    x = ConvUnit(x, channels, hiddenChannels, 1, 1, 1, Act.HardSwish, "head_hidden", batchNorm: false);
                    channels = hiddenChannels;
                }
                x = ConvUnit(x, channels, options.Classes, 1, 1, 1, Act.None, "classifier", batchNorm: false);
                return Flatten(x, options.Classes);
            }
            x = Flatten(x, channels);
            if (hiddenChannels > 0)
            {
                x = Activate(Dense(x, channels, hiddenChannels, 2f, "head_hidden"), Act.HardSwish);
                channels = hiddenChannels;
            }
            return Dense(x, channels, options.Classes, 1f, "classifier");
        }

        private string Flatten(string x, int channels)
        {
            switch (options.Flatten)
            {
                case SyntheticFlatten.Flatten:
                    return _graph.Node("Flatten", [x], "flatten", Int("axis", 1));
                case SyntheticFlatten.ReshapeConstant:
                    return _graph.Node("Reshape", [x, _graph.Int64Initializer("flatten_shape", [2], -1, channels)], "flatten");
                default:
                    string shape = _graph.Node("Shape", [x], "flatten_shape");
                    string batch = _graph.Node("Gather", [shape, _graph.Int64Initializer("flatten_batch_index", [], 0)], "flatten_gather", Int("axis", 0));
                    string batch1d = options.Opset >= 13
                        ? _graph.Node("Unsqueeze", [batch, _graph.Int64Initializer("flatten_axes", [1], 0)], "flatten_unsqueeze")
                        : _graph.Node("Unsqueeze", [batch], "flatten_unsqueeze", Ints("axes", 0));
                    string target = _graph.Node("Concat", [batch1d, _graph.Int64Initializer("flatten_rest", [1], -1)], "flatten_concat", Int("axis", 0));
                    return _graph.Node("Reshape", [x, target], "flatten");
            }
        }

        /// <summary>A fully connected layer on [N, K]: Gemm(transB=1) with an [N, K] weight, or MatMul with [K, N] plus Add.</summary>
        private string Dense(string x, int inputs, int outputs, float gainSquared, string stem)
        {
            float std = MathF.Sqrt(gainSquared / inputs);
            string bias = _graph.FloatInitializer(stem + "_bias", [outputs], Normal(outputs, 0f, 0.01f));
            if (options.Classifier == SyntheticClassifier.Gemm)
            {
                string weight = Weight(stem + "_weight", [outputs, inputs], std, pointwise: false);
                return _graph.Node("Gemm", [x, weight, bias], stem, Float("alpha", 1f), Float("beta", 1f), Int("transB", 1));
            }
            string matrix = Weight(stem + "_weight", [inputs, outputs], std, pointwise: false);
            return _graph.Node("Add", [_graph.Node("MatMul", [x, matrix], stem + "_matmul"), bias], stem);
        }

        /// <summary>Conv (+ bias, or + unfolded BatchNormalization) + activation. He-scaled for a rectifier, gain 1 for linear outputs.</summary>
        private string ConvUnit(string x, int inChannels, int outChannels, int kernel, int stride, int group, Act act, string stem,
            float gain = 1f, bool batchNorm = true, float biasMean = 0f)
        {
            int fanIn = inChannels / group * kernel * kernel;
            float std = gain * MathF.Sqrt((act == Act.None ? 1f : 2f) / fanIn);
            bool pointwise = kernel == 1 && group == 1;
            string weight = Weight(stem + "_weight", [outChannels, inChannels / group, kernel, kernel], std, pointwise);
            var attributes = new[]
            {
                Ints("dilations", 1, 1), Int("group", group), Ints("kernel_shape", kernel, kernel),
                Ints("pads", kernel / 2, kernel / 2, kernel / 2, kernel / 2), Ints("strides", stride, stride),
            };
            bool unfolded = batchNorm && options.UnfoldedBatchNorm;
            string[] inputs = unfolded
                ? [x, weight]
                : [x, weight, _graph.FloatInitializer(stem + "_bias", [outChannels], Normal(outChannels, biasMean, 0.05f))];
            string y = _graph.Node("Conv", inputs, stem, attributes);
            if (unfolded) y = BatchNorm(y, outChannels, stem);
            return Activate(y, act);
        }

        private string BatchNorm(string x, int channels, string stem)
        {
            string scale = _graph.FloatInitializer(stem + "_bn_scale", [channels], Uniform(channels, 0.8f, 1.2f));
            string shift = _graph.FloatInitializer(stem + "_bn_bias", [channels], Normal(channels, 0f, 0.05f));
            string mean = _graph.FloatInitializer(stem + "_bn_mean", [channels], Normal(channels, 0f, 0.05f));
            string variance = _graph.FloatInitializer(stem + "_bn_var", [channels], Uniform(channels, 0.8f, 1.2f));
            return _graph.Node("BatchNormalization", [x, scale, shift, mean, variance], stem + "_bn", Float("epsilon", 1e-3f));
        }

        private string Activate(string x, Act act)
        {
            switch (act)
            {
                case Act.None:
                    return x;
                case Act.Relu:
                    return _graph.Node("Relu", [x]);
                case Act.Relu6:
                    if (options.Opset < 11) return _graph.Node("Clip", [x], "relu6", Float("min", 0f), Float("max", 6f));
                    _clipMin ??= _graph.FloatInitializer("clip_min", [], [0f]);
                    _clipMax ??= _graph.FloatInitializer("clip_max", [], [6f]);
                    return _graph.Node("Clip", [x, _clipMin, _clipMax], "relu6");
                case Act.HardSwish:
                    if (options.Opset >= 14) return _graph.Node("HardSwish", [x]);
                    string hardSigmoid = _graph.Node("HardSigmoid", [x], "hardswish_gate", Float("alpha", 1f / 6f), Float("beta", 0.5f));
                    return _graph.Node("Mul", [x, hardSigmoid], "hardswish");
                default:
                    return _graph.Node("Mul", [x, _graph.Node("Sigmoid", [x], "swish_gate")], "swish");
            }
        }

        /// <summary>A normal(0, std) weight; 1x1 weights get the requested exact zeros and, if asked, a sparse_initializer.</summary>
        private string Weight(string stem, long[] dims, float std, bool pointwise)
        {
            int count = (int)dims.Aggregate(1L, (product, dim) => product * dim);
            float[] values = Normal(count, 0f, std);
            if (pointwise) ZeroRandomFraction(values, options.PointwiseSparsity);
            string name = pointwise && options.SparseInitializers
                ? _graph.SparseFloatInitializer(stem, dims, values)
                : _graph.FloatInitializer(stem, dims, values);
            return options.WeightsThroughIdentity ? _graph.Node("Identity", [name], stem + "_read") : name;
        }

        /// <summary>Zeroes round(fraction * length) entries chosen uniformly at random.</summary>
        private void ZeroRandomFraction(float[] values, float fraction)
        {
            int zeros = (int)MathF.Round(fraction * values.Length);
            if (zeros == 0) return;
            int[] order = Enumerable.Range(0, values.Length).ToArray();
            _random.Shuffle(order);
            for (int i = 0; i < zeros; i++) values[order[i]] = 0f;
        }

        private float[] Normal(int count, float mean, float std)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++)
            {
                // Box-Muller; 1 - NextDouble() is in (0, 1] so the logarithm stays finite.
                double radius = Math.Sqrt(-2.0 * Math.Log(1.0 - _random.NextDouble()));
                values[i] = mean + std * (float)(radius * Math.Cos(2.0 * Math.PI * _random.NextDouble()));
            }
            return values;
        }

        private float[] Uniform(int count, float low, float high)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++) values[i] = low + (high - low) * (float)_random.NextDouble();
            return values;
        }
    }
}
