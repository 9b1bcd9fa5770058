using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Microsoft.ML.Sparse.Formats;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Benchmarks.Kernels;

/// <summary>A 1x1 convolution shape: input channels, output channels and the spatial size.</summary>
public readonly record struct PointwiseShape(int InChannels, int OutChannels, int Height, int Width)
{
    /// <summary>Pixels per channel.</summary>
    public int Pixels => Height * Width;

    /// <inheritdoc/>
    public override string ToString() => $"{InChannels}->{OutChannels}@{Height}x{Width}";
}

/// <summary>
/// SpMM next to the dense 1x1 path on MobileNet v1/v2 pointwise shapes, single-threaded, widest SIMD, ReLU6 epilogue.
/// Weights are random and magnitude-pruned to <see cref="Sparsity"/> (0.5 to 0.7 locate the crossover that sets
/// <see cref="SparseNetworkOptions.DefaultSparseThreshold"/>). The GFLOP/s columns count useful flops (2 x nonzeros x pixels
/// for SpMM, 2 x Cout x Cin x pixels for dense) over the mean and over the fastest iteration (the machine may be shared);
/// Ratio is time over the dense baseline. <see cref="BlockSize"/> 4 prunes whole blocks of 4 output channels x 1 input (the
/// pruner's BlockSize option), which lets SpMM use 4-channel blocks. As in the engine, planes are padded to whole cache
/// lines (<see cref="PlaneLayout"/>) and sparse weights are cut into L1-sized chunks of input rows.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(GflopsConfig))]
public unsafe class PointwiseBenchmarks
{
    private PointwiseWeights _sparse = null!, _dense = null!;
    private float* _input, _output;
    private int _planeStride;

    /// <summary>MobileNet v1 (512x512 at 14x14, 1024x1024 at 7x7, 64->128 at 112x112) and v2 (96->576 at 14x14, 32->192 at 112x112).</summary>
    public static IEnumerable<PointwiseShape> Shapes =>
    [
        new(512, 512, 14, 14), new(1024, 1024, 7, 7), new(96, 576, 14, 14), new(32, 192, 112, 112), new(64, 128, 112, 112),
    ];

    /// <summary>The layer shape.</summary>
    [ParamsSource(nameof(Shapes))]
    public PointwiseShape Shape { get; set; }

    /// <summary>Fraction of weights pruned.</summary>
    [Params(0.5f, 0.6f, 0.65f, 0.7f, 0.8f, 0.9f)]
    public float Sparsity { get; set; }

    /// <summary>Output channels pruned together: 1 (unstructured) or 4.</summary>
    [Params(1, 4)]
    public int BlockSize { get; set; } = 1;

    /// <summary>Prunes random weights and prepares both paths and the activations.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var weights = MagnitudePruned(random, Shape.OutChannels, Shape.InChannels, Sparsity, BlockSize);
        var bias = RandomValues(random, Shape.OutChannels);
        _sparse = PointwiseKernel.PrepareWeights(weights, bias, Shape.OutChannels, Shape.InChannels, Shape.Pixels, sparseThreshold: 0f, SimdWidth.Auto);
        _dense = PointwiseWeights.Create(weights, bias, Shape.OutChannels, Shape.InChannels, sparseThreshold: float.PositiveInfinity);
        _planeStride = PlaneLayout.Padded(Shape.Pixels);
        _input = Allocate(RandomValues(random, Shape.InChannels * _planeStride));
        _output = Allocate(new float[Shape.OutChannels * _planeStride]);
    }

    /// <summary>Frees what <see cref="Setup"/> made.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _sparse.Dispose();
        _dense.Dispose();
        NativeMemory.AlignedFree(_input);
        NativeMemory.AlignedFree(_output);
    }

    /// <summary>The dense register-blocked 1x1 path.</summary>
    [Benchmark(Baseline = true)]
    public void Dense() => Run(_dense);

    /// <summary>The SpMM path.</summary>
    [Benchmark]
    public void Sparse() => Run(_sparse);

    private void Run(PointwiseWeights weights) =>
        PointwiseKernel.Run(weights, _input, _output, null, PlaneStrides.Dense(_planeStride), 0, _planeStride, 0, Shape.OutChannels, Activation.Relu6, SimdWidth.Auto);

    /// <summary>
    /// Gaussian weights <c>[outChannels, inChannels]</c> with the <see cref="ZeroCount"/> blocks of <paramref name="blockSize"/>
    /// output channels x 1 input of smallest L1 norm set to zero (outChannels must be a multiple of blockSize).
    /// </summary>
    internal static float[] MagnitudePruned(Random random, int outChannels, int inChannels, float sparsity, int blockSize = 1)
    {
        var weights = new float[outChannels * inChannels];
        for (int i = 0; i < weights.Length; i++)
            weights[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        // Block b covers output channels [b / inChannels * blockSize, +blockSize) at input b % inChannels.
        IEnumerable<int> Members(int block) => Enumerable.Range(0, blockSize).Select(c => (block / inChannels * blockSize + c) * inChannels + block % inChannels);
        var order = Enumerable.Range(0, weights.Length / blockSize).OrderBy(b => Members(b).Sum(i => MathF.Abs(weights[i]))).ToArray();
        foreach (int block in order.Take((int)(ZeroCount(outChannels, inChannels, sparsity, blockSize) / blockSize)))
            foreach (int i in Members(block)) weights[i] = 0f;
        return weights;
    }

    /// <summary>Zero weights <see cref="MagnitudePruned"/> leaves: the sparsity's share of whole blocks.</summary>
    internal static double ZeroCount(int outChannels, int inChannels, float sparsity, int blockSize) =>
        Math.Round(sparsity * outChannels * inChannels / blockSize) * blockSize;

    private static float[] RandomValues(Random random, int count) =>
        Enumerable.Range(0, count).Select(_ => random.NextSingle() * 2f - 1f).ToArray();

    private static float* Allocate(float[] values)
    {
        var memory = (float*)NativeMemory.AlignedAlloc((nuint)(values.Length * sizeof(float)), 64);
        values.CopyTo(new Span<float>(memory, values.Length));
        return memory;
    }

    /// <summary>Adds the GFLOP/s columns (mean and fastest iteration).</summary>
    private sealed class GflopsConfig : ManualConfig
    {
        public GflopsConfig() => AddColumn(new GflopsColumn(UsefulMacs), new GflopsColumn(UsefulMacs, fastest: true));
    }

    /// <summary>Useful multiply-accumulates of a case: W's nonzeros (or the whole dense W) x pixels.</summary>
    private static double UsefulMacs(BenchmarkCase benchmarkCase)
    {
        var shape = (PointwiseShape)benchmarkCase.Parameters[nameof(Shape)]!;
        float sparsity = (float)benchmarkCase.Parameters[nameof(Sparsity)]!;
        int blockSize = (int)benchmarkCase.Parameters[nameof(BlockSize)]!;
        double weights = (double)shape.OutChannels * shape.InChannels;
        double macs = benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(Dense)
            ? weights
            : weights - ZeroCount(shape.OutChannels, shape.InChannels, sparsity, blockSize);
        return macs * shape.Pixels;
    }
}
