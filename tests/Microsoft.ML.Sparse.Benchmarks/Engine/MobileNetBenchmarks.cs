using BenchmarkDotNet.Attributes;
using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Benchmarks.Engine;

/// <summary>
/// Whole synthetic MobileNet v1 / v2 (width 1.0, 224x224, random weights, 1x1 layers pruned to <see cref="Sparsity"/>)
/// end to end; the memory diagnoser shows the bytes allocated per inference (expected: 0).
/// </summary>
[MemoryDiagnoser]
public class MobileNetBenchmarks
{
    private SparseNetwork _network = null!;
    private SparseWorkspace _workspace = null!;
    private float[] _input = null!, _output = null!;

    [Params("V1", "V2")]
    public string Model { get; set; } = "V1";

    [Params(0f, 0.7f, 0.9f)]
    public float Sparsity { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var (twin, _, output) = Model == "V1"
            ? SyntheticMobileNets.MobileNetV1(224, 1f, Sparsity, seed: 1)
            : SyntheticMobileNets.MobileNetV2(224, 1f, Sparsity, seed: 1);
        _network = twin.Engine.Build(output, new SparseNetworkOptions { Threads = Threads });
        _workspace = _network.CreateWorkspace();
        _input = ScalarReference.Random(new Random(2), _network.InputShape.Length);
        _output = new float[_network.OutputShape.Length];
    }

    [GlobalCleanup]
    public void Cleanup() => _workspace.Dispose();

    [Benchmark]
    public void Inference() => _network.Run(_input, _output, _workspace);
}
