using System.Diagnostics;
using System.Globalization;

namespace Microsoft.ML.Sparse.Samples;

/// <summary>
/// What a fresh process reports about its first predictions, as key=value lines on stdout: the start-up benchmark
/// (tests/Microsoft.ML.Sparse.Benchmarks, `startup`) runs this sample and its own ML.NET and ONNX Runtime cases, which
/// link this file, and parses the lines. Times in ms, memory in KiB.
/// </summary>
public static class StartupReport
{
    private static long _startTicks, _residentAtStart;

    /// <summary>Call first thing: load time and added resident memory count from here.</summary>
    public static void Begin()
    {
        _residentAtStart = Environment.WorkingSet;
        _startTicks = Stopwatch.GetTimestamp();
    }

    /// <summary>Call once the model (ML.NET: the fitted pipeline and its prediction engine) is ready.</summary>
    public static void Loaded()
    {
        Print("load_ms", Stopwatch.GetElapsedTime(_startTicks).TotalMilliseconds);
        Print("rss_load_kib", (Environment.WorkingSet - _residentAtStart) / 1024.0);
    }

    /// <summary>
    /// Times <paramref name="first"/> calls one by one (1st, 2nd, 10th and their sum), then <paramref name="steady"/> more
    /// (their median is the steady state). "first_scores" is printed as soon as the first call returns, so the parent can
    /// time process start to first scores.
    /// </summary>
    public static void TimePredictions(Action predict, int first, int steady, Action? afterFirst = null)
    {
        var times = new double[Math.Max(first, 1)];
        for (int i = 0; i < times.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            predict();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (i == 0)
            {
                Console.WriteLine("first_scores");
                afterFirst?.Invoke();
            }
        }
        Print("p1_ms", times[0]);
        if (times.Length >= 2) Print("p2_ms", times[1]);
        if (times.Length >= 10) Print("p10_ms", times[9]);
        Print($"first{times.Length}_ms", times.Sum());
        if (steady > 0)
        {
            var tail = new double[steady];
            for (int i = 0; i < steady; i++)
            {
                long start = Stopwatch.GetTimestamp();
                predict();
                tail[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            Array.Sort(tail);
            Print("steady_ms", tail[steady / 2]);
        }
        Print("rss_kib", (Environment.WorkingSet - _residentAtStart) / 1024.0);
    }

    /// <summary>Prints the managed heap still reachable (after a full collection) and the top-5 classes.</summary>
    public static void Finish(string detail, ReadOnlySpan<float> scores)
    {
        Print("managed_kib", GC.GetTotalMemory(forceFullCollection: true) / 1024.0);
        int[] order = Enumerable.Range(0, scores.Length).ToArray();
        float[] keys = scores.ToArray();
        Array.Sort(keys, order);
        Console.WriteLine($"top5={string.Join(",", order.Reverse().Take(5))}");
        Console.WriteLine($"detail={detail}");
    }

    /// <summary>The same input in every process and runtime (integer hashing, exact in float): values in [-1, 1).</summary>
    public static float[] DeterministicImage(int length)
    {
        var image = new float[length];
        for (int i = 0; i < length; i++) image[i] = (((uint)i * 2654435761u) >> 8) / (float)(1 << 23) - 1f;
        return image;
    }

    private static void Print(string key, double value) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{key}={value:0.###}"));
}
