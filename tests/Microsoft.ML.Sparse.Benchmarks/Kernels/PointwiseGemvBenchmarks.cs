using BenchmarkDotNet.Attributes;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Benchmarks.Kernels;

/// <summary>
/// The one-pixel layers: dense GEMV next to the two sparse GEMVs (gathered and permuted inputs) on the classifiers of MobileNet v1 (1024 -> 1001) and of
/// v2/EfficientNet (1280 -> 1000) and on squeeze-and-excitation FCs (MobileNetV3's 576 -> 144, EfficientNet-B0's last
/// squeeze 1152 -> 48 and excitation 48 -> 1152), single-threaded, 512-bit vectors (meant for AVX-512 machines); locates <see cref="FullyConnectedLayer.SparseGemvMinimumSparsity"/>
/// and <see cref="FullyConnectedLayer.PermutedGemvMinimumSparsity"/>.
/// </summary>
[MemoryDiagnoser]
public unsafe class PointwiseGemvBenchmarks
{
    private float[] _packed = null!, _bias = null!, _input = null!, _output = null!;
    private SparseRows _rows = null!;
    private PermutedSparseRows _permuted = null!;
    private int _inputs, _outputs;

    /// <summary>Inputs x outputs of the layer.</summary>
    [Params("1024x1001", "1280x1000", "576x144", "1152x48", "48x1152")]
    public string Layer { get; set; } = "1024x1001";

    /// <summary>Fraction of weights pruned (by magnitude).</summary>
    [Params(0.6f, 0.7f, 0.8f, 0.85f, 0.9f)]
    public float Sparsity { get; set; }

    /// <summary>Prunes random weights and prepares both formats.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        _inputs = int.Parse(Layer.Split('x')[0]);
        _outputs = int.Parse(Layer.Split('x')[1]);
        float[] weights = PointwiseBenchmarks.MagnitudePruned(random, _outputs, _inputs, Sparsity);
        _packed = FullyConnectedKernel.Pack(weights, _outputs, _inputs);
        _rows = new SparseRows(weights, _outputs, _inputs);
        _permuted = PermutedSparseRows.Create(weights, _outputs, _inputs);
        _bias = GC.AllocateArray<float>(_outputs, pinned: true);
        _input = GC.AllocateArray<float>(_inputs, pinned: true);
        _output = GC.AllocateArray<float>(_outputs, pinned: true);
        for (int i = 0; i < _inputs; i++) _input[i] = random.NextSingle();
    }

    /// <summary>The dense GEMV over transposed weights.</summary>
    [Benchmark(Baseline = true)]
    public void Dense()
    {
        fixed (float* input = _input, weights = _packed, bias = _bias, output = _output)
            FullyConnectedKernel.Run<Float512>(input, weights, bias, null, output, _inputs, _outputs, 0, _outputs, Activation.None);
    }

    /// <summary>The sparse GEMV over the nonzeros, gathering each step's inputs (the form of narrower plans).</summary>
    [Benchmark]
    public void Sparse()
    {
        fixed (float* input = _input, bias = _bias, output = _output)
            FullyConnectedKernel.RunSparse<Float512>(input, _rows, bias, null, output, 0, _outputs, Activation.None);
    }

    /// <summary>The sparse GEMV over the nonzeros in 32-input blocks, permuting each step's inputs (512-bit plans).</summary>
    [Benchmark]
    public void Permuted()
    {
        fixed (float* input = _input, bias = _bias, output = _output)
            FullyConnectedKernel.RunPermuted<Float512>(input, _permuted, bias, null, output, 0, _outputs, Activation.None);
    }
}
