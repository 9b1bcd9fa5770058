using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Benchmarks.Kernels;

/// <summary>One-layer networks (single thread, widest SIMD) of MobileNet-shaped convolutions; GFLOP/s counts dense MACs.</summary>
public abstract class ConvolutionBenchmarkBase : IMacCount
{
    private SparseNetwork _network = null!;
    private SparseWorkspace _workspace = null!;
    private float[] _input = null!, _output = null!;

    /// <inheritdoc/>
    public long Macs => _network?.Layers.Sum(layer => layer.DenseMacs) ?? BuildNetwork().Layers.Sum(layer => layer.DenseMacs);

    protected abstract SparseNetwork BuildNetwork();

    [GlobalSetup]
    public void Setup()
    {
        _network = BuildNetwork();
        _workspace = _network.CreateWorkspace();
        _input = Enumerable.Range(0, _network.InputShape.Length).Select(i => (i % 13) / 13f - 0.5f).ToArray();
        _output = new float[_network.OutputShape.Length];
    }

    [GlobalCleanup]
    public void Cleanup() => _workspace.Dispose();

    [Benchmark]
    public void Run() => _network.Run(_input, _output, _workspace);

    protected static float[] Weights(int count) => Enumerable.Range(0, count).Select(i => ((i * 7) % 11) / 11f - 0.5f).ToArray();

    protected static SparseNetworkOptions SingleThread => new() { Threads = 1 };
}

/// <summary>Depthwise layers of MobileNet v1/v2 (3x3) and v3/EfficientNet (5x5).</summary>
[Config(typeof(Config))]
public class DepthwiseBenchmarks : ConvolutionBenchmarkBase
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GflopsColumn(GflopsColumn.FromMacCount), StatisticColumn.Min);
    }

    /// <summary>"channels x size, kernel, stride".</summary>
    [Params("32x112 k3 s1", "64x112 k3 s2", "128x56 k3 s1", "256x28 k3 s1", "512x14 k3 s1", "1152x7 k3 s1", "96x112 k3 s2", "240x28 k3 s2",
        "32x112 k5 s1", "144x56 k5 s1", "240x28 k5 s1", "672x14 k5 s1", "1152x7 k5 s1", "96x112 k5 s2", "72x56 k5 s2", "672x14 k5 s2", "512x14 k3 s2", "576x14 k5 s2")]
    public string Shape { get; set; } = "32x112 k3 s1";

    protected override SparseNetwork BuildNetwork()
    {
        string[] parts = Shape.Split(' ');
        int[] dims = parts[0].Split('x').Select(int.Parse).ToArray();
        int channels = dims[0], size = dims[1], kernel = int.Parse(parts[1][1..]), stride = int.Parse(parts[2][1..]);
        var builder = new SparseNetworkBuilder(channels, size, size);
        TensorHandle y = builder.DepthwiseConv(builder.Input, Weights(channels * kernel * kernel), Weights(channels), kernel, kernel, stride, stride,
            Padding.SameUpper(size, size, kernel, kernel, stride, stride), Activation.Relu6);
        return builder.Build(y, SingleThread);
    }
}

/// <summary>The first layer of MobileNets: 3 -> 32 channels, 3x3, stride 2, 224x224, with the activations of v1/v2 (ReLU6), v3 (HardSwish) and EfficientNet (Swish).</summary>
[Config(typeof(Config))]
public class FirstLayerConvBenchmarks : ConvolutionBenchmarkBase
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GflopsColumn(GflopsColumn.FromMacCount), StatisticColumn.Min);
    }

    [Params(224)]
    public int Size { get; set; } = 224;

    [Params("Relu6", "HardSwish", "Swish")]
    public string Function { get; set; } = "Relu6";

    protected override SparseNetwork BuildNetwork()
    {
        var builder = new SparseNetworkBuilder(3, Size, Size);
        Activation activation = Function switch { "HardSwish" => Activation.HardSwish, "Swish" => Activation.Swish, _ => Activation.Relu6 };
        TensorHandle y = builder.Conv(builder.Input, Weights(32 * 27), Weights(32), 32, 3, 3, 2, 2, Padding.SameUpper(Size, Size, 3, 3, 2, 2), activation);
        return builder.Build(y, SingleThread);
    }
}

/// <summary>
/// A 90%-sparse 1x1 expansion feeding a depthwise layer, both with Swish, as in EfficientNet and MobileNetV3 (the engine
/// pairs or fuses them): "in->out@size kK sS". GFLOP/s counts the depthwise MACs and the 1x1's dense MACs.
/// </summary>
[Config(typeof(Config))]
public class PointwiseDepthwiseBenchmarks : ConvolutionBenchmarkBase
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GflopsColumn(GflopsColumn.FromMacCount), StatisticColumn.Min);
    }

    /// <summary>EfficientNet-B0's 16->96 at 112 (3x3 s2), 80->480 at 14 (3x3), 112->672 at 14 (5x5), 192->1152 at 7 (5x5), 112->672 at 14 (5x5 s2).</summary>
    [Params("16->96@112 k3 s2", "80->480@14 k3 s1", "112->672@14 k5 s1", "192->1152@7 k5 s1", "112->672@14 k5 s2")]
    public string Shape { get; set; } = "16->96@112 k3 s2";

    protected override SparseNetwork BuildNetwork()
    {
        string[] parts = Shape.Split(' ', '@', '>');
        int inChannels = int.Parse(parts[0].TrimEnd('-')), outChannels = int.Parse(parts[1]), size = int.Parse(parts[2]);
        int kernel = int.Parse(parts[3][1..]), stride = int.Parse(parts[4][1..]);
        var builder = new SparseNetworkBuilder(inChannels, size, size);
        float[] weights = PointwiseBenchmarks.MagnitudePruned(new Random(3), outChannels, inChannels, 0.9f);
        TensorHandle x = builder.Pointwise(builder.Input, weights, Weights(outChannels), outChannels, Activation.Swish);
        TensorHandle y = builder.DepthwiseConv(x, Weights(outChannels * kernel * kernel), Weights(outChannels), kernel, kernel, stride, stride,
            Padding.SameUpper(size, size, kernel, kernel, stride, stride), Activation.Swish);
        return builder.Build(y, SingleThread);
    }
}

/// <summary>
/// <see cref="DepthwiseConvKernel"/> called directly on aligned native planes (widest SIMD, Relu6): the kernel alone,
/// without the network's input and output copies that <see cref="DepthwiseBenchmarks"/> includes.
/// </summary>
[Config(typeof(Config))]
public unsafe class DepthwiseKernelBenchmarks : IMacCount
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new GflopsColumn(GflopsColumn.FromMacCount), StatisticColumn.Min);
    }

    /// <summary>
    /// "channels x height [x width], kernel, stride [, padding top,left,bottom,right]" (default "same", TF's SAME_UPPER).
    /// 12 channels of 112x112 fit in L2 (the compute-bound rate, as in the banded fused layers); the 3x3 stride-2 pair
    /// with left padding 1 and 2 puts the two row-load paths side by side on the same work (four vectors of 56-57 columns),
    /// and the 3x3 stride-1 pair with left padding 1 and 0 does the same for that kernel (one load and two slid-in edge
    /// columns per row, against three loads).
    /// </summary>
    [Params("96x7 k3 s1", "1152x7 k3 s1", "1152x7 k5 s1", "512x14 k3 s1", "672x14 k5 s1", "240x28 k5 s1", "120x28 k5 s1", "12x112 k3 s1", "12x112 k3 s1 p1,0,1,2", "144x56 k3 s1", "96x112 k3 s2", "512x14 k3 s2", "672x14 k5 s2",
        "12x112 k3 s2", "144x56 k3 s2", "24x56 k3 s2", "12x112 k3 s2 p1,1,1,1", "12x112x113 k3 s2 p1,2,1,0")]
    public string Shape { get; set; } = "1152x7 k5 s1";

    private float* _input, _output, _weights, _bias, _scratch;
    private ConvGeometry _geometry;
    private int _channels;

    /// <inheritdoc/>
    public long Macs { get { Parse(); return (long)_channels * _geometry.OutHeight * _geometry.OutWidth * _geometry.Taps; } }

    private void Parse()
    {
        string[] parts = Shape.Split(' ');
        int[] dims = parts[0].Split('x').Select(int.Parse).ToArray();
        int kernel = int.Parse(parts[1][1..]), stride = int.Parse(parts[2][1..]);
        int height = dims[1], width = dims.Length > 2 ? dims[2] : dims[1];
        _channels = dims[0];
        Padding pad = Padding.SameUpper(height, width, kernel, kernel, stride, stride);
        if (parts.Length > 3)
        {
            int[] sides = parts[3][1..].Split(',').Select(int.Parse).ToArray();
            pad = new Padding(sides[0], sides[1], sides[2], sides[3]);
        }
        _geometry = new ConvGeometry(height, width, kernel, kernel, stride, stride, pad);
    }

    private static float* Filled(long count)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
        for (long i = 0; i < count; i++) p[i] = (i % 13) / 13f - 0.5f;
        return p;
    }

    [GlobalSetup]
    public void Setup()
    {
        Parse();
        _input = Filled((long)_channels * _geometry.InPlaneStride + 64);
        _output = Filled((long)_channels * _geometry.OutPlaneStride + 64);
        _weights = Filled((long)_channels * _geometry.Taps);
        _bias = Filled(_channels);
        _scratch = Filled(DepthwiseConvKernel.ScratchFloats(_geometry) + 64);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_input);
        NativeMemory.AlignedFree(_output);
        NativeMemory.AlignedFree(_weights);
        NativeMemory.AlignedFree(_bias);
        NativeMemory.AlignedFree(_scratch);
    }

    [Benchmark]
    public void Run() => DepthwiseConvKernel.Run<Float512>(_input, _output, _weights, _bias, _geometry, 0, _channels, Activation.Relu6, _scratch);
}
