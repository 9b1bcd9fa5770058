using System.Runtime.CompilerServices;
using Microsoft.ML.Sparse.Tests.MLNet;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>Memory-sensitive tests run alone: the working set is process-wide, so parallel tests would add noise.</summary>
[CollectionDefinition(nameof(MemoryCollection), DisableParallelization = true)]
public sealed class MemoryCollection;

/// <summary>
/// Long runs keep the managed heap and the working set flat: <see cref="SparseModel.Run"/> allocates nothing, a
/// PredictionEngine a bounded amount per row, failed calls and failed loads leak neither managed nor native memory.
/// Figures are printed (docs/reliability.md quotes them).
/// </summary>
[Collection(nameof(MemoryCollection))]
public sealed class MemoryTests(ITestOutputHelper output)
{
    /// <summary>Working-set growth tolerated over a long run after warm-up: JIT tiering and allocator noise, not per-call growth.</summary>
    private const long WorkingSetTolerance = 16 << 20;

    /// <summary>Managed heap growth tolerated over a long run (objects ML.NET or the runtime cache on first use).</summary>
    private const long HeapTolerance = 4 << 20;

    /// <summary>
    /// Process memory after a full collection, split in two: the working set minus what the GC has committed (native
    /// memory: packed weights, runtime, allocator), and the live managed heap. The raw working set swings by the GC's
    /// committed-but-free memory (tens of MiB), which would hide or fake a leak.
    /// </summary>
    private readonly record struct Footprint(long Native, long Heap, long WorkingSet)
    {
        public static Footprint Measure()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            var info = GC.GetGCMemoryInfo();
            long workingSet = Environment.WorkingSet;
            return new Footprint(workingSet - info.TotalCommittedBytes, info.HeapSizeBytes, workingSet);
        }

        public override string ToString() =>
            $"native {Native / 1048576.0:F1} MiB, managed heap {Heap / 1048576.0:F1} MiB, working set {WorkingSet / 1048576.0:F1} MiB";
    }

    private void Check(string what, int calls, long allocated, Footprint before, Footprint after)
    {
        output.WriteLine($"{what}: {calls:N0} calls, {allocated:N0} bytes allocated on the calling thread ({(double)allocated / calls:F1} per call); " +
            $"before: {before}; after: {after}");
        Assert.InRange(after.Native - before.Native, long.MinValue, WorkingSetTolerance);
        Assert.InRange(after.Heap - before.Heap, long.MinValue, HeapTolerance);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void TenThousandRuns_AllocateNothingAndKeepTheWorkingSetFlat(int threads)
    {
        var model = SparseModel.Load(MLNetTestData.TinyModel, new SparseModelOptions { Threads = threads }, TestContext.Current.CancellationToken);
        RunMany($"tiny v1 32x32, Threads={threads}", model, 10_000);
    }

    [Fact]
    public void RealModelRuns_AllocateNothingAndKeepTheWorkingSetFlat()
    {
        var model = SparseModel.Load(SharedData.Require("models/mobilenet_v1_1.0_224.onnx"), new SparseModelOptions { Threads = 1 }, TestContext.Current.CancellationToken);
        RunMany("mobilenet_v1_1.0_224, Threads=1", model, 300);
    }

    private void RunMany(string what, SparseModel model, int calls)
    {
        using var workspace = model.CreateWorkspace();
        var image = MLNetTestData.RandomImages(1, seed: 5, length: model.InputLength)[0];
        var scores = new float[model.OutputLength];
        for (int i = 0; i < 100; i++) model.Run(image, scores, workspace);
        var footprint = Footprint.Measure();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < calls; i++) model.Run(image, scores, workspace);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Check(what, calls, allocated, footprint, Footprint.Measure());
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void TenThousandPredictions_AllocateABoundedAmountPerRow()
    {
        var mlContext = new MLContext(seed: 1);
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = MLNetTestData.TinyModel })
            .Fit(MLNetTestData.LoadPixels(mlContext, []));
        using var engine = mlContext.Model.CreatePredictionEngine<MLNetTestData.TinyInput, MLNetTestData.TinyOutput>(transformer);
        var input = new MLNetTestData.TinyInput { Pixels = MLNetTestData.RandomImages(1, seed: 5)[0] };
        var prediction = new MLNetTestData.TinyOutput();
        for (int i = 0; i < 100; i++) engine.Predict(input, ref prediction);
        var footprint = Footprint.Measure();
        long before = GC.GetAllocatedBytesForCurrentThread();
        const int calls = 10_000;
        for (int i = 0; i < calls; i++) engine.Predict(input, ref prediction);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Check("PredictionEngine.Predict(input, ref output), tiny v1", calls, allocated, footprint, Footprint.Measure());
        // ML.NET's own per-row bookkeeping; the scorer reuses the output array (VBufferEditor) and its workspace.
        Assert.InRange(allocated / calls, 0, 1024);
    }

    [Fact]
    public void RunsThatThrowOnBadLengths_LeakNothing()
    {
        var model = SparseModel.Load(MLNetTestData.TinyModel, new SparseModelOptions { Threads = 2 }, TestContext.Current.CancellationToken);
        using var workspace = model.CreateWorkspace();
        var wrong = new float[model.InputLength - 1];
        var scores = new float[model.OutputLength];
        void Fail() => Assert.Throws<ArgumentException>(() => model.Run(wrong, scores, workspace));
        for (int i = 0; i < 100; i++) Fail();
        var footprint = Footprint.Measure();
        long before = GC.GetAllocatedBytesForCurrentThread();
        const int calls = 10_000;
        for (int i = 0; i < calls; i++) Fail();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Check("Run throwing ArgumentException (bad input length), Threads=2", calls, allocated, footprint, Footprint.Measure());
        // The exception, its message and stack trace; nothing stays reachable.
        Assert.InRange(allocated / calls, 1, 8192);
    }

    /// <summary>
    /// Loads that fail after the 1x1 weights were packed into native memory (the arena check runs after the layers are
    /// prepared) and loads that succeed and are dropped: the finalizer of the native weights returns the memory, so the
    /// working set stays flat.
    /// </summary>
    [Fact]
    public void FailedAndDroppedLoads_ReturnNativeWeightMemory()
    {
        byte[] arenaTooLarge = SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Resolution = 5200, Classes = 1000 });
        byte[] wide = SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Resolution = 32, Classes = 1000, WidthMultiplier = 1f });
        // glibc keeps freed native blocks for reuse: warm up until that plateaus, then measure.
        const int loads = 15;
        LoadMany(arenaTooLarge, wide, loads);
        var footprint = Footprint.Measure();
        long before = GC.GetAllocatedBytesForCurrentThread();
        LoadMany(arenaTooLarge, wide, loads);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Check($"Load failing after weight packing + load of a {wide.Length / 1048576.0:F1} MiB model, dropped", loads, allocated, footprint, Footprint.Measure());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LoadMany(byte[] failing, byte[] loading, int count)
    {
        for (int i = 0; i < count; i++)
        {
            var error = Assert.Throws<UnsupportedOnnxModelException>(() => SparseModel.Load(failing, new SparseModelOptions { Threads = 1 }));
            Assert.Contains("live activations", error.Message);
            Assert.NotNull(SparseModel.Load(loading, new SparseModelOptions { Threads = 1 }));
        }
    }
}
