using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>Builds a <see cref="TwinBuilder"/> network at every SIMD width and with 1 and 2 threads and checks it against the reference.</summary>
internal static class EngineAssert
{
    public static readonly int[] ThreadCounts = [1, 2];

    /// <summary>
    /// Runs a fresh random input through the engine at every available width with 1 and 2 threads: each result must be within
    /// <paramref name="tolerance"/> of the scalar reference, and 2 threads must give bitwise the result of 1 thread, except
    /// where the plan splits projections into partial sums (<see cref="ChannelSplitBottleneckLayer"/>): there within
    /// <paramref name="tolerance"/> of 1 thread, and the same bits on a second run.
    /// </summary>
    public static void MatchesReference(TwinBuilder twin, TensorHandle output, Random random, string what,
        double tolerance = 1e-5, IEnumerable<SimdWidth>? widths = null, float[]? input = null, float sparseThreshold = SparseNetworkOptions.DefaultSparseThreshold)
    {
        input ??= ScalarReference.Random(random, twin.Input.Length);
        float[] expected = twin.Evaluate(input, output);
        foreach (SimdWidth width in widths ?? SimdSupport.Available)
        {
            float[]? singleThreaded = null;
            foreach (int threads in ThreadCounts)
            {
                SparseNetwork network = twin.Engine.Build(output, new SparseNetworkOptions { Threads = threads, MaxSimdWidth = width, SparseThreshold = sparseThreshold });
                float[] actual = Run(network, input);
                EngineAssert.Close(expected, actual, tolerance, $"{what}, {width}, {threads} thread(s)");
                if (singleThreaded == null) singleThreaded = actual;
                else SameAsOneThread(network, input, singleThreaded, actual, tolerance, $"{what}, {width}, {threads} threads");
            }
        }
    }

    /// <summary>
    /// <paramref name="actual"/> (from <paramref name="network"/>, planned for several threads) equals <paramref name="singleThreaded"/>
    /// bitwise, or, where the plan sums projections in parts, within <paramref name="tolerance"/> and with the same bits on another run.
    /// </summary>
    public static void SameAsOneThread(SparseNetwork network, float[] input, float[] singleThreaded, float[] actual, double tolerance, string what)
    {
        if (!network.PlannedLayers.Any(layer => layer is ChannelSplitBottleneckLayer))
        {
            Assert.True(singleThreaded.AsSpan().SequenceEqual(actual), $"{what}: differ bitwise from 1 thread.");
            return;
        }
        Close(singleThreaded, actual, tolerance, $"{what} against 1 thread");
        Assert.True(actual.AsSpan().SequenceEqual(Run(network, input)), $"{what}: a second run differs bitwise.");
    }

    /// <summary>Asserts max |actual - expected| &lt;= tolerance * max |expected| (a relative error over the tensor).</summary>
    public static void Close(float[] expected, ReadOnlySpan<float> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = 0, worst = 0;
        int worstIndex = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double error = Math.Abs((double)actual[i] - expected[i]);
            if (!(error <= worst)) { worst = error; worstIndex = i; }
        }
        if (!(worst <= tolerance * Math.Max(scale, 1e-30)))
            Assert.Fail($"{what}: max error {worst:G4} at {worstIndex} (expected {expected[worstIndex]:G9}, got {actual[worstIndex]:G9}) exceeds {tolerance:G2} x max |expected| {scale:G4}.");
    }

    public static float[] Run(SparseNetworkBuilder builder, TensorHandle output, float[] input, SparseNetworkOptions options) =>
        Run(builder.Build(output, options), input);

    /// <summary>One inference on a fresh workspace.</summary>
    public static float[] Run(SparseNetwork network, float[] input)
    {
        using SparseWorkspace workspace = network.CreateWorkspace();
        var actual = new float[network.OutputShape.Length];
        network.Run(input, actual, workspace);
        return actual;
    }
}
