namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>The public engine API: validation, errors, buffer planning, Describe, allocation-free and concurrent runs.</summary>
public sealed class SparseNetworkApiTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Run_AllocatesNothing_AfterWarmUp(int threads)
    {
        var (network, workspace, input, result) = SmallMobileNetV2(threads, seed: 1);
        using SparseWorkspace owned = workspace;
        // With two threads the plan has split bottlenecks and their sums, so those run allocation-free too.
        if (threads > 1) Assert.Contains(network.PlannedLayers, layer => layer is ChannelSplitBottleneckLayer);
        // Past tiered compilation's tier-up (30 calls per method), whose call counting may allocate on the calling thread.
        for (int i = 0; i < 100; i++) network.Run(input, result, workspace);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) network.Run(input, result, workspace);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void LayerTicks_TimeEveryLayer_WithinTheInferences_OnlyWhileAttached(int threads)
    {
        var (network, workspace, input, result) = SmallMobileNetV2(threads, seed: 5);
        using SparseWorkspace owned = workspace;
        var ticks = new long[network.PlannedLayers.Length];

        workspace.LayerTicks = ticks;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < 5; i++) network.Run(input, result, workspace);
        long elapsed = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        workspace.LayerTicks = null;
        long[] attached = (long[])ticks.Clone();
        network.Run(input, result, workspace);

        Assert.All(attached, layerTicks => Assert.True(layerTicks > 0));
        Assert.True(attached.Sum() <= elapsed, $"layers {attached.Sum()} ticks, inferences {elapsed}");
        Assert.Equal(attached, ticks);
    }

    /// <summary>A 64x64 MobileNet v2 (width 0.35, 90% sparse) built for <paramref name="threads"/>, its workspace, a random input and an output.</summary>
    private static (SparseNetwork Network, SparseWorkspace Workspace, float[] Input, float[] Result) SmallMobileNetV2(int threads, int seed)
    {
        var (twin, _, output) = SyntheticMobileNets.MobileNetV2(64, 0.35f, 0.9f, seed);
        SparseNetwork network = twin.Engine.Build(output, new SparseNetworkOptions { Threads = threads });
        return (network, network.CreateWorkspace(), ScalarReference.Random(new Random(seed + 1), network.InputShape.Length), new float[network.OutputShape.Length]);
    }

    [Fact]
    public void Build_ReusesActivationBuffersByLiveness()
    {
        var (twin, _, output) = SyntheticMobileNets.MobileNetV1(64, 0.5f, 0.9f, seed: 3);
        // One thread: with more, small-plane 1x1 + depthwise pairs run as one layer and the plan has fewer tensors.
        SparseNetwork network = twin.Engine.Build(output, new SparseNetworkOptions { Threads = 1 });
        long sumOfIntermediates = network.Layers.Take(network.Layers.Count - 1).Sum(layer => (long)layer.Output.Length);
        // A chain has at most two live tensors at a time, so two buffers of the largest tensor (ping-pong) bound the arena.
        long largest = network.Layers.Max(layer => (long)BufferPlanner.RoundUp(layer.Output.Length));
        Assert.True(network.ActivationFloats <= 2 * largest, $"arena {network.ActivationFloats} floats, largest tensor {largest}");
        Assert.True(network.ActivationFloats < sumOfIntermediates / 3);
    }

    [Fact]
    public void Build_NeverAliasesAnOutputWithAnInputItReads()
    {
        var (twin, _, output) = SyntheticMobileNets.MobileNetV2(64, 0.5f, 0.9f, seed: 4);
        SparseNetwork network = twin.Engine.Build(output);
        var lastReader = new Dictionary<int, int>();
        for (int i = 0; i < network.PlannedLayers.Length; i++)
            foreach (TensorHandle input in network.PlannedLayers[i].Inputs) lastReader[input.Id] = i;
        var producer = network.PlannedLayers.Select((layer, i) => (layer.Output.Id, i)).ToDictionary(p => p.Id, p => p.i);
        // Two tensors may share memory only if one is dead (last read) before the other is written.
        var placed = network.PlannedLayers.Select(l => l.Output).Where(t => network.TensorOffsets[t.Id] >= 0).ToArray();
        foreach (TensorHandle a in placed)
            foreach (TensorHandle b in placed)
            {
                if (producer[a.Id] >= producer[b.Id]) continue;
                int aStart = network.TensorOffsets[a.Id], bStart = network.TensorOffsets[b.Id];
                long aSize = (long)a.Channels * network.PlaneStrides[a.Id], bSize = (long)b.Channels * network.PlaneStrides[b.Id];
                bool overlap = aStart < bStart + bSize && bStart < aStart + aSize;
                if (overlap) Assert.True(lastReader[a.Id] < producer[b.Id], $"tensor {a.Id} is still read at layer {lastReader[a.Id]} when {b.Id} is written at {producer[b.Id]}");
            }
    }

    [Fact]
    public void Run_ValidatesSpansAndWorkspace()
    {
        var builder = new SparseNetworkBuilder(2, 3, 3);
        TensorHandle y = builder.GlobalAveragePool(builder.Input);
        SparseNetwork network = builder.Build(y, new SparseNetworkOptions { Threads = 1 });
        SparseNetwork other = builder.Build(y, new SparseNetworkOptions { Threads = 1 });
        using SparseWorkspace workspace = network.CreateWorkspace();
        using SparseWorkspace foreign = other.CreateWorkspace();

        var shortInput = Assert.Throws<ArgumentException>(() => network.Run(new float[17], new float[2], workspace));
        Assert.Contains("17", shortInput.Message);
        Assert.Contains("18", shortInput.Message);
        var longOutput = Assert.Throws<ArgumentException>(() => network.Run(new float[18], new float[3], workspace));
        Assert.Contains("3", longOutput.Message);
        Assert.Contains("2", longOutput.Message);
        Assert.Throws<ArgumentException>(() => network.Run(new float[18], new float[2], foreign));
        var shared = new float[18];
        Assert.Throws<ArgumentException>(() => network.Run(shared, shared.AsSpan(16, 2), workspace));

        SparseWorkspace disposed = network.CreateWorkspace();
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => network.Run(new float[18], new float[2], disposed));
    }

    [Fact]
    public void Builder_RejectsMismatchedShapes_NamingLayerAndShapes()
    {
        var builder = new SparseNetworkBuilder(8, 10, 10);
        TensorHandle pooled = builder.GlobalAveragePool(builder.Input);
        var add = Assert.Throws<ArgumentException>(() => builder.Add(builder.Input, pooled, name: "skip"));
        Assert.Contains("skip", add.Message);
        Assert.Contains("[8, 1, 1]", add.Message);
        Assert.Contains("[8, 10, 10]", add.Message);

        var residual = Assert.Throws<ArgumentException>(() => builder.Pointwise(builder.Input, new float[16 * 8], [], 16, residual: builder.Input, name: "project"));
        Assert.Contains("project", residual.Message);
        Assert.Contains("[16, 10, 10]", residual.Message);

        var weights = Assert.Throws<ArgumentException>(() => builder.DepthwiseConv(builder.Input, new float[8 * 9 - 1], [], 3, 3, name: "dw"));
        Assert.Contains("dw", weights.Message);
        Assert.Contains("[8, 1, 3, 3]", weights.Message);

        var scale = Assert.Throws<ArgumentException>(() => builder.Multiply(builder.Input, new SparseNetworkBuilder(4, 1, 1).Input, name: "se"));
        Assert.Contains("se", scale.Message);

        var foreign = new SparseNetworkBuilder(3, 5, 5);
        Assert.Throws<ArgumentException>(() => builder.Activate(foreign.GlobalAveragePool(foreign.Input), Activation.Relu));
        Assert.Throws<ArgumentException>(() => builder.Conv(builder.Input, new float[4 * 8 * 25], [], 4, 5, 5, padding: Padding.Uniform(-1)));
        Assert.Throws<ArgumentException>(() => builder.Build(pooled, new SparseNetworkOptions { Threads = 0 }));
        var wide = new SparseNetworkBuilder(512, 8, 8);
        var tooManyTaps = Assert.Throws<NotSupportedException>(() => wide.Conv(wide.Input, new float[512 * 25], [], 1, 5, 5, name: "wide"));
        Assert.Contains("wide", tooManyTaps.Message);
        Assert.Contains("2048", tooManyTaps.Message);
    }

    [Fact]
    public void Describe_ListsEveryLayerWithMacsAndTotals()
    {
        var (twin, _, output) = SyntheticMobileNets.MobileNetV1(64, 0.5f, 0.9f, seed: 5);
        SparseNetwork network = twin.Engine.Build(output);
        string table = network.Describe();
        foreach (LayerInfo layer in network.Layers) Assert.Contains(layer.Name, table);
        Assert.Contains("Total", table);

        LayerInfo conv = network.Layers[0];
        Assert.Equal("Conv", conv.Kind);
        Assert.Equal(16L * 32 * 32 * 3 * 9, conv.DenseMacs);
        LayerInfo pointwise = network.Layers.First(layer => layer.Kind == "Pointwise" && layer.Output.Height > 1);
        Assert.Equal((long)pointwise.Output.Length * pointwise.Input.Channels, pointwise.DenseMacs);
        Assert.InRange(pointwise.Sparsity, 0.89f, 0.91f);
        Assert.True(pointwise.ExecutedMacs < pointwise.DenseMacs / 2);
        Assert.Contains("SpMM", pointwise.Kernel);
        Assert.Contains(network.Layers.Sum(layer => layer.DenseMacs).ToString("N0", System.Globalization.CultureInfo.InvariantCulture), table);
    }

    [Fact]
    public void Run_IsThreadSafe_WithOneWorkspacePerCaller()
    {
        var (twin, logits, _) = SyntheticMobileNets.MobileNetV1(64, 0.25f, 0.9f, seed: 6);
        SparseNetwork network = twin.Engine.Build(logits, new SparseNetworkOptions { Threads = 2 });
        float[][] inputs = Enumerable.Range(0, 4).Select(i => ScalarReference.Random(new Random(i), network.InputShape.Length)).ToArray();
        float[][] expected = inputs.Select(input => twin.Evaluate(input, logits)).ToArray();
        var failures = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var callers = Enumerable.Range(0, 4).Select(c => new Thread(() =>
        {
            try
            {
                using SparseWorkspace workspace = network.CreateWorkspace();
                var result = new float[network.OutputShape.Length];
                for (int round = 0; round < 5; round++)
                {
                    network.Run(inputs[c], result, workspace);
                    EngineAssert.Close(expected[c], result, 1e-5, $"caller {c}");
                }
            }
            catch (Exception e) { failures.Add(e); }
        })).ToArray();
        foreach (Thread caller in callers) caller.Start();
        foreach (Thread caller in callers) caller.Join();
        Assert.Empty(failures);
    }

    /// <summary>
    /// With more threads than cores (chunks are taken unevenly): the same bits on every run, within rounding of one thread
    /// (projections summed in parts), and bitwise one thread's where no layer is fused.
    /// </summary>
    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void Run_WithMoreThreadsThanCores_IsDeterministic_AndMatchesOneThread(int threads)
    {
        var (twin, _, output) = SyntheticMobileNets.MobileNetV2(96, 0.5f, 0.8f, seed: 8);
        float[] input = ScalarReference.Random(new Random(9), twin.Input.Length);
        float[] single = EngineAssert.Run(twin.Engine, output, input, new SparseNetworkOptions { Threads = 1 });
        SparseNetwork network = twin.Engine.Build(output, new SparseNetworkOptions { Threads = threads });
        Assert.Contains(network.PlannedLayers, layer => layer is ChannelSplitBottleneckLayer);
        float[] first = EngineAssert.Run(network, input);
        EngineAssert.Close(single, first, 1e-5, $"{threads} threads against 1");
        for (int round = 0; round < 3; round++)
            Assert.Equal(first, EngineAssert.Run(twin.Engine, output, input, new SparseNetworkOptions { Threads = threads }));

        float[] unfused = EngineAssert.Run(twin.Engine, output, input, new SparseNetworkOptions { Threads = 1, FuseLayers = false });
        for (int round = 0; round < 3; round++)
            Assert.Equal(unfused, EngineAssert.Run(twin.Engine, output, input, new SparseNetworkOptions { Threads = threads, FuseLayers = false }));
    }

    [Fact]
    public void Build_DropsLayersThatDoNotReachTheOutput()
    {
        var builder = new SparseNetworkBuilder(4, 6, 6);
        TensorHandle pooled = builder.GlobalAveragePool(builder.Input);
        builder.Softmax(pooled);
        SparseNetwork network = builder.Build(pooled);
        Assert.Single(network.Layers);
        Assert.Equal(pooled, network.OutputShape);
    }
}

/// <summary>The thread split: parts tile the range exactly, in order, with aligned inner boundaries.</summary>
public sealed class WorkSplitTests
{
    [Theory]
    [InlineData(0, 2, 1)]
    [InlineData(1, 2, 16)]
    [InlineData(49, 2, 16)]
    [InlineData(784, 2, 16)]
    [InlineData(1000, 3, 16)]
    [InlineData(32, 2, 4)]
    [InlineData(7, 4, 1)]
    public void Parts_TileTheRange_AtAlignedBoundaries(int total, int parts, int align)
    {
        int expectedStart = 0;
        for (int part = 0; part < parts; part++)
        {
            (int start, int end) = WorkSplit.Range(total, part, parts, align);
            Assert.Equal(expectedStart, start);
            Assert.True(end >= start);
            if (end < total) Assert.Equal(0, end % align);
            expectedStart = end;
        }
        Assert.Equal(total, expectedStart);
    }
}
