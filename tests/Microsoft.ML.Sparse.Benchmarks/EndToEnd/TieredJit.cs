namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>Runs code past .NET's first JIT tier before it is timed.</summary>
internal static class TieredJit
{
    /// <summary>
    /// At least 200 calls and half a second, pausing now and then: the JIT promotes hot methods in the background a while
    /// after their 30th call, and the engine's kernels are generic methods compiled per width and activation.
    /// </summary>
    public static void WarmUp(Action run)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 200 || clock.ElapsedMilliseconds < 500; i++)
        {
            run();
            if (i % 50 == 49) Thread.Sleep(100);
        }
    }
}
