using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Microsoft.ML.Sparse.Formats;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Benchmarks.Kernels;

/// <summary>
/// The price of each activation in the SpMM epilogue, on the expansion shapes of EfficientNet and MobileNetV3 at 90%
/// (few input channels, so each output vector carries a couple of FMAs and a whole activation): the ratio to
/// <c>None</c> in the same run is what the activation costs where the kernel holds the values.
/// </summary>
[MemoryDiagnoser]
public unsafe class PointwiseEpilogueBenchmarks
{
    private PointwiseWeights _weights = null!;
    private float* _input, _output;
    private int _planeStride;
    private Activation _activation;

    /// <summary>EfficientNet-B0's 16->96 at 112x112 and 24->144 at 56x56, MobileNetV3-large's 40->120 at 28x28.</summary>
    public static IEnumerable<PointwiseShape> Shapes => [new(16, 96, 112, 112), new(24, 144, 56, 56), new(40, 120, 28, 28)];

    /// <summary>The layer shape.</summary>
    [ParamsSource(nameof(Shapes))]
    public PointwiseShape Shape { get; set; }

    /// <summary>The epilogue's activation.</summary>
    [Params("None", "Relu6", "HardSwish", "Sigmoid", "Swish")]
    public string Function { get; set; } = "None";

    /// <summary>Prunes random weights to 90% and prepares the activations.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var weights = PointwiseBenchmarks.MagnitudePruned(random, Shape.OutChannels, Shape.InChannels, 0.9f);
        var bias = Enumerable.Range(0, Shape.OutChannels).Select(_ => random.NextSingle() - 0.5f).ToArray();
        _weights = PointwiseKernel.PrepareWeights(weights, bias, Shape.OutChannels, Shape.InChannels, Shape.Pixels, sparseThreshold: 0f, SimdWidth.Auto);
        _planeStride = PlaneLayout.Padded(Shape.Pixels);
        _input = (float*)NativeMemory.AlignedAlloc((nuint)(Shape.InChannels * _planeStride * sizeof(float)), 64);
        for (int i = 0; i < Shape.InChannels * _planeStride; i++) _input[i] = random.NextSingle() * 8f - 4f;
        _output = (float*)NativeMemory.AlignedAlloc((nuint)(Shape.OutChannels * _planeStride * sizeof(float)), 64);
        _activation = Function switch
        {
            "Relu6" => Activation.Relu6, "HardSwish" => Activation.HardSwish, "Sigmoid" => Activation.Sigmoid,
            "Swish" => Activation.Swish, _ => Activation.None,
        };
    }

    /// <summary>Frees what <see cref="Setup"/> made.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _weights.Dispose();
        NativeMemory.AlignedFree(_input);
        NativeMemory.AlignedFree(_output);
    }

    /// <summary>One SpMM over the whole plane with the epilogue.</summary>
    [Benchmark]
    public void Sparse() =>
        PointwiseKernel.Run(_weights, _input, _output, null, PlaneStrides.Dense(_planeStride), 0, _planeStride, 0, Shape.OutChannels, _activation, SimdWidth.Auto);
}
