using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparse.Benchmarks.EndToEnd;

/// <summary>
/// How well the machine itself runs two threads at that moment: a loop of independent FMAs in registers (no memory, no
/// synchronisation) timed on one thread, then on two threads at once, each doing the same work. On a quiet machine with
/// two real cores the ratio is 2.0; a shared virtual machine whose two vCPUs land on one physical core, or whose host is
/// busy, reads less, and then no program's two-thread figures (ours or ONNX Runtime's) can reach 2x. Run around the
/// end-to-end benchmarks so their two-thread rows can be read against it.
/// </summary>
internal static class MachineScalingProbe
{
    private const long Iterations = 20_000_000;

    /// <summary>The two-thread scaling of <paramref name="samples"/> runs (about 0.1 s each), formatted as min / median / max.</summary>
    public static string Measure(int samples = 9)
    {
        Work(1000);
        var ratios = new List<double>();
        for (int i = 0; i < samples; i++)
        {
            long start = Stopwatch.GetTimestamp();
            Work(Iterations);
            double one = Stopwatch.GetElapsedTime(start).TotalSeconds;
            start = Stopwatch.GetTimestamp();
            var other = new Thread(() => Work(Iterations));
            other.Start();
            Work(Iterations);
            other.Join();
            double two = Stopwatch.GetElapsedTime(start).TotalSeconds;
            ratios.Add(2 * one / two);
        }
        ratios.Sort();
        return string.Create(CultureInfo.InvariantCulture, $"{ratios[0]:0.00}x / {ratios[ratios.Count / 2]:0.00}x / {ratios[^1]:0.00}x");
    }

    /// <summary>
    /// One core's FMA peak in GFLOP/s (2 flops per lane per FMA), fastest of <paramref name="samples"/> runs of a register-only
    /// loop of sixteen independent FMA chains at the widest vector width the machine accelerates: the yardstick of the
    /// end-to-end report's "% of peak".
    /// </summary>
    public static double PeakGflops(int samples = 9)
    {
        const long iterations = 10_000_000;
        Peak(1000);
        double best = double.MaxValue;
        for (int i = 0; i < samples; i++)
        {
            long start = Stopwatch.GetTimestamp();
            Peak(iterations);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        int lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
        return 16.0 * lanes * 2 * iterations / best / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Peak(long iterations)
    {
        if (!Vector512.IsHardwareAccelerated) return Work(iterations) + Work(iterations);
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        Vector512<float> a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
        Vector512<float> w = Vector512.Create(0.9999f), b = Vector512.Create(1e-4f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, w, b); a1 = Vector512.FusedMultiplyAdd(a1, w, b);
            a2 = Vector512.FusedMultiplyAdd(a2, w, b); a3 = Vector512.FusedMultiplyAdd(a3, w, b);
            a4 = Vector512.FusedMultiplyAdd(a4, w, b); a5 = Vector512.FusedMultiplyAdd(a5, w, b);
            a6 = Vector512.FusedMultiplyAdd(a6, w, b); a7 = Vector512.FusedMultiplyAdd(a7, w, b);
            a8 = Vector512.FusedMultiplyAdd(a8, w, b); a9 = Vector512.FusedMultiplyAdd(a9, w, b);
            a10 = Vector512.FusedMultiplyAdd(a10, w, b); a11 = Vector512.FusedMultiplyAdd(a11, w, b);
            a12 = Vector512.FusedMultiplyAdd(a12, w, b); a13 = Vector512.FusedMultiplyAdd(a13, w, b);
            a14 = Vector512.FusedMultiplyAdd(a14, w, b); a15 = Vector512.FusedMultiplyAdd(a15, w, b);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15);
    }

    /// <summary>Eight independent FMA chains, enough to keep both FMA pipes of a core busy.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Work(long iterations)
    {
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        Vector256<float> w = Vector256.Create(0.9999f), b = Vector256.Create(1e-4f);
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, w, b);
            a1 = Vector256.FusedMultiplyAdd(a1, w, b);
            a2 = Vector256.FusedMultiplyAdd(a2, w, b);
            a3 = Vector256.FusedMultiplyAdd(a3, w, b);
            a4 = Vector256.FusedMultiplyAdd(a4, w, b);
            a5 = Vector256.FusedMultiplyAdd(a5, w, b);
            a6 = Vector256.FusedMultiplyAdd(a6, w, b);
            a7 = Vector256.FusedMultiplyAdd(a7, w, b);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
    }
}
