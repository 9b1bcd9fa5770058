using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>
/// Loads mutants of one model and classifies each: loaded and scored once on a random input, or rejected with a
/// documented <see cref="OnnxModelException"/>. Anything else is a failure: another exception type, a message that does
/// not name the source, a load slower than the time bound, or a load allocating more than the memory bound.
/// </summary>
internal sealed class LoaderFuzzer
{
    /// <summary>Per-case wall-clock bound (load plus one inference), generous for two busy cores.</summary>
    public static readonly TimeSpan CaseTimeout = Infrastructure.TestTimeouts.Scaled(TimeSpan.FromSeconds(5));

    /// <summary>Managed bytes a load may allocate beyond <see cref="AllocationFactor"/> x the file size.</summary>
    public const long AllocationSlack = 16 << 20;

    /// <remarks>Parse (1x), decoded tensors (1x), constant folding, BN/affine folding and planning copies: the unmutated MobileNet v2 files measure 5.4x.</remarks>
    public const int AllocationFactor = 6;

    /// <summary>Workspaces larger than this are not created: a mutated input dim may legitimately plan a huge image.</summary>
    public const long MaxWorkspaceFloats = 64 << 20;

    public const string Scored = "loaded, scored (finite outputs)";
    public const string ScoredNonFinite = "loaded, scored (some outputs NaN/Inf)";
    public const string TooLargeToScore = "loaded, workspace over 256 MiB (not scored)";

    private readonly SortedDictionary<string, int> _outcomes = new(StringComparer.Ordinal);
    private readonly List<string> _failures = [];
    private long _worstExcess = long.MinValue;

    public int Cases { get; private set; }
    public TimeSpan Elapsed { get; private set; }
    public TimeSpan SlowestCase { get; private set; }
    /// <summary>The load allocating the most above the proportional part of the bound: (bytes allocated, file size).</summary>
    public (long Allocated, long FileSize) WorstAllocation { get; private set; }
    public IReadOnlyList<string> Failures => _failures;

    /// <summary>Runs mutants <paramref name="firstSeed"/> .. firstSeed + cases - 1 of <paramref name="original"/>.</summary>
    public void Run(string name, byte[] original, int cases, int firstSeed, bool structuralOnly = false)
    {
        var mutator = new ModelMutator(original);
        var clock = Stopwatch.StartNew();
        for (int seed = firstSeed; seed < firstSeed + cases; seed++)
        {
            var (bytes, description) = mutator.Mutate(seed, structuralOnly);
            string label = $"{name} seed {seed} ({description})";
            var started = Stopwatch.StartNew();
            var task = Task.Run(() => LoadAndScore(bytes, seed));
            if (!task.Wait(CaseTimeout))
            {
                _failures.Add($"{label}: no result within {CaseTimeout.TotalSeconds} s (hang?)");
                continue;
            }
            SlowestCase = TimeSpan.FromTicks(Math.Max(SlowestCase.Ticks, started.Elapsed.Ticks));
            var (outcome, loadAllocated, problem) = task.Result;
            long excess = loadAllocated - AllocationFactor * (long)bytes.Length;
            if (excess > _worstExcess)
            {
                _worstExcess = excess;
                WorstAllocation = (loadAllocated, bytes.Length);
            }
            if (loadAllocated > AllocationFactor * (long)bytes.Length + AllocationSlack)
                problem ??= $"the load allocated {loadAllocated:N0} bytes for a {bytes.Length:N0}-byte file";
            if (problem is not null) _failures.Add($"{label}: {problem}");
            _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;
            Cases++;
        }
        Elapsed += clock.Elapsed;
    }

    private static (string Outcome, long LoadAllocated, string? Problem) LoadAndScore(byte[] bytes, int seed)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        SparseModel model;
        try
        {
            model = SparseModel.Load(bytes, new SparseModelOptions { Threads = 1 });
        }
        catch (OnnxModelException e)
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            bool namesSource = e.ModelSource == "(bytes)" && e.Message.StartsWith("ONNX model '(bytes)': ", StringComparison.Ordinal)
                && e.Message.Length > "ONNX model '(bytes)': ".Length + 5;
            return (e.GetType().Name, allocated, namesSource ? null : $"{e.GetType().Name} without the source or a reason: {e.Message}");
        }
        catch (Exception e)
        {
            return (e.GetType().Name + " (undocumented)", GC.GetAllocatedBytesForCurrentThread() - before, $"undocumented exception {e}");
        }
        long loadAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        try
        {
            return (Score(model, seed), loadAllocated, null);
        }
        catch (Exception e)
        {
            return ("scoring threw " + e.GetType().Name, loadAllocated, $"the model loaded but scoring threw {e}");
        }
    }

    private static string Score(SparseModel model, int seed)
    {
        var network = model.Network;
        if (network.ActivationFloats + (long)network.ScratchFloatsPerThread > MaxWorkspaceFloats) return TooLargeToScore;
        var random = new Random(seed);
        var input = new float[model.InputLength];
        for (int i = 0; i < input.Length; i++) input[i] = random.NextSingle() * 2 - 1;
        var output = new float[model.OutputLength];
        using var workspace = model.CreateWorkspace();
        model.Run(input, output, workspace);
        return output.All(float.IsFinite) ? Scored : ScoredNonFinite;
    }

    /// <summary>The outcome histogram, time and bounds as a Markdown table.</summary>
    public string Report(string title)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{title}: {Cases} cases in {Elapsed.TotalSeconds:F1} s, slowest case {SlowestCase.TotalMilliseconds:F0} ms, " +
            $"closest to the allocation bound: {WorstAllocation.Allocated:N0} bytes for a {WorstAllocation.FileSize:N0}-byte file, {_failures.Count} failure(s)");
        text.AppendLine("| outcome | cases |");
        text.AppendLine("|---|---|");
        foreach (var (outcome, count) in _outcomes) text.AppendLine(CultureInfo.InvariantCulture, $"| {outcome} | {count} |");
        foreach (string failure in _failures.Take(20)) text.AppendLine("FAILURE " + failure);
        return text.ToString();
    }
}
