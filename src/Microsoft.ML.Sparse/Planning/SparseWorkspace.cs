using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// Per-caller scratch state of a <see cref="SparseNetwork"/>: one 64-byte-aligned arena holding every activation buffer and
/// per-thread scratch, and the worker threads when <c>Threads &gt; 1</c>. Not thread-safe: use one workspace per concurrent
/// caller. Dispose it to stop its workers.
/// </summary>
/// <remarks>
/// With N threads each layer is cut into <see cref="PlannedLayer.PartsPerThread"/> x N chunks (two per thread for most
/// layers, along dimensions that leave every output's summation order alone). The caller and N - 1 background workers each
/// claim their own chunks first (with two per thread, thread t: chunks 2t and 2t + 1), then any chunk still unclaimed, and move to the next
/// layer once all chunks of the previous one are done. Own chunks first keeps each thread on the same pixels or
/// channels from layer to layer, so the data it reads is mostly what it wrote, still in its own L2 (a shared counter
/// handed chunks out at random: 5% slower with two threads); claiming the rest keeps a descheduled thread (a busy
/// machine) from stalling the others: whoever runs does the work.
/// Between inferences workers spin for <see cref="IdleSpinTicks"/> (so back-to-back inferences never wait for a kernel
/// wake-up), then block, so an idle workspace costs no CPU. Within an inference nobody blocks: the waits between layers
/// spin (yielding the core, never sleeping).
/// </remarks>
public sealed unsafe class SparseWorkspace : IDisposable
{
    /// <summary>How long an idle worker polls for the next inference before blocking: ~200 us.</summary>
    private static readonly long IdleSpinTicks = Stopwatch.Frequency / 5000;

    private readonly float[] _arena;
    private readonly nint[] _tensors;
    private readonly int[] _planeStrides;
    private readonly TensorTable _tensorTable;
    private readonly float* _scratch;
    private readonly int _threads, _maxChunks;
    /// <summary>Chunks per layer: its parts per thread x threads (1 with one thread).</summary>
    private readonly int[] _chunks;
    private readonly int[] _claimed, _doneChunks;
    private readonly Thread[] _workers;
    private readonly SemaphoreSlim[] _start;
    private readonly int[] _asleep;
    private int _generation, _activeWorkers;
    private volatile bool _stopping;
    private bool _disposed;
    private Exception? _failure;

    internal SparseWorkspace(SparseNetwork network)
    {
        Network = network;
        _threads = network.Threads;
        _chunks = network.PlannedLayers.Select(layer => _threads == 1 ? 1 : layer.PartsPerThread * _threads).ToArray();
        _maxChunks = _chunks.DefaultIfEmpty(1).Max();
        long floats = network.ActivationFloats + (long)_threads * network.ScratchFloatsPerThread + BufferPlanner.AlignFloats;
        _arena = GC.AllocateArray<float>(checked((int)floats), pinned: true);
        float* arenaStart = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_arena));
        float* aligned = (float*)(((nint)arenaStart + 63) & ~(nint)63);

        _tensors = GC.AllocateArray<nint>(network.TensorCount, pinned: true);
        _planeStrides = GC.AllocateArray<int>(network.TensorCount, pinned: true);
        network.PlaneStrides.CopyTo(_planeStrides, 0);
        _tensorTable = new TensorTable((float**)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_tensors)),
            (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_planeStrides)));
        for (int id = 0; id < network.TensorCount; id++)
            if (network.TensorOffsets[id] >= 0) _tensors[id] = (nint)(aligned + network.TensorOffsets[id]);
        _scratch = aligned + network.ActivationFloats;

        _claimed = new int[network.PlannedLayers.Length * _maxChunks];
        _doneChunks = new int[network.PlannedLayers.Length];
        _workers = new Thread[_threads - 1];
        _start = new SemaphoreSlim[_threads - 1];
        _asleep = new int[_threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _start[i] = new SemaphoreSlim(0);
            int thread = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(thread)) { IsBackground = true, Name = $"SparseWorkspace worker {thread}" };
            _workers[i].Start();
        }
    }

    internal SparseNetwork Network { get; }

    /// <summary>
    /// For profiling inside whole inferences: when set (one entry per planned layer), each run adds to entry l the
    /// <see cref="Stopwatch"/> ticks the caller's thread saw from the end of layer l - 1 to the end of layer l, waits for
    /// the other threads included. Null (the default) costs one branch per layer.
    /// </summary>
    internal long[]? LayerTicks { get; set; }

    /// <summary>Runs every layer with the network input and output at the given addresses.</summary>
    internal void Execute(float* input, float* output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _tensors[Network.InputShape.Id] = (nint)input;
        _tensors[Network.OutputShape.Id] = (nint)output;
        if (_threads == 1)
        {
            RunLayers(0);
            return;
        }
        Array.Clear(_claimed);
        Array.Clear(_doneChunks);
        _failure = null;
        Volatile.Write(ref _activeWorkers, _workers.Length);
        StartWorkers();
        RunLayers(0);
        // The counters are reset by the next inference, so every worker must have left this one.
        WaitUntil(ref _activeWorkers, 0);
        if (_failure is { } failure) throw new InvalidOperationException("A SparseNetwork layer failed on a worker thread.", failure);
    }

    /// <summary>
    /// Runs layer <paramref name="index"/> alone on the calling thread, over the buffers an earlier run filled (for per-layer
    /// profiling): <paramref name="input"/> and <paramref name="output"/> are the network's, pinned by the caller.
    /// </summary>
    internal void RunLayerAlone(int index, float* input, float* output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ObjectDisposedException.ThrowIf(Network.IsDisposed, Network);
        _tensors[Network.InputShape.Id] = (nint)input;
        _tensors[Network.OutputShape.Id] = (nint)output;
        PlannedLayer layer = Network.PlannedLayers[index];
        switch (Network.Width)
        {
            case SimdWidth.Vector512: layer.Run<Float512>(_tensorTable, _scratch, 0, 1); break;
            case SimdWidth.Vector256: layer.Run<Float256>(_tensorTable, _scratch, 0, 1); break;
            case SimdWidth.Vector128: layer.Run<Float128>(_tensorTable, _scratch, 0, 1); break;
            default: layer.Run<Scalar>(_tensorTable, _scratch, 0, 1); break;
        }
    }

    /// <summary>Announces the next inference (or the stop) to every worker, waking those that went to sleep.</summary>
    private void StartWorkers()
    {
        Interlocked.Increment(ref _generation);
        for (int i = 0; i < _workers.Length; i++)
            if (Interlocked.Exchange(ref _asleep[i], 0) == 1) _start[i].Release();
    }

    private void WorkerLoop(int thread)
    {
        int seen = 0;
        while (true)
        {
            seen = WaitForGeneration(thread - 1, seen);
            if (_stopping) return;
            RunLayers(thread);
            Interlocked.Decrement(ref _activeWorkers);
        }
    }

    /// <summary>Waits until the generation moves past <paramref name="seen"/>: polls for a while, then sleeps until <see cref="StartWorkers"/> wakes it.</summary>
    private int WaitForGeneration(int worker, int seen)
    {
        long deadline = Stopwatch.GetTimestamp() + IdleSpinTicks;
        var spin = new SpinWait();
        while (Volatile.Read(ref _generation) == seen && Stopwatch.GetTimestamp() < deadline)
            spin.SpinOnce(sleep1Threshold: -1);
        if (Volatile.Read(ref _generation) == seen)
        {
            // A full fence (not a plain store) so the re-check below cannot read the generation before the flag is visible.
            Interlocked.Exchange(ref _asleep[worker], 1);
            // If the generation moved meanwhile, whoever clears the flag owns the wake-up.
            if (Volatile.Read(ref _generation) == seen || Interlocked.Exchange(ref _asleep[worker], 0) == 0)
                _start[worker].Wait();
        }
        return Volatile.Read(ref _generation);
    }

    private void RunLayers(int thread)
    {
        switch (Network.Width)
        {
            case SimdWidth.Vector512: RunLayers<Float512>(thread); break;
            case SimdWidth.Vector256: RunLayers<Float256>(thread); break;
            case SimdWidth.Vector128: RunLayers<Float128>(thread); break;
            default: RunLayers<Scalar>(thread); break;
        }
    }

    private void RunLayers<TVec>(int thread) where TVec : struct, IFloatVector<TVec>
    {
        PlannedLayer[] layers = Network.PlannedLayers;
        float* scratch = _scratch + (long)thread * Network.ScratchFloatsPerThread;
        long[]? ticks = thread == 0 ? LayerTicks : null;
        long mark = ticks == null ? 0 : Stopwatch.GetTimestamp();
        if (_threads == 1)
        {
            for (int l = 0; l < layers.Length; l++)
            {
                layers[l].Run<TVec>(_tensorTable, scratch, 0, 1);
                if (ticks != null) AddTicks(ticks, l, ref mark);
            }
            return;
        }
        for (int l = 0; l < layers.Length; l++)
        {
            if (l > 0)
            {
                WaitUntil(ref _doneChunks[l - 1], _chunks[l - 1]);
                if (ticks != null) AddTicks(ticks, l - 1, ref mark);
            }
            int chunks = _chunks[l], own = chunks / _threads;
            for (int i = 0; i < chunks; i++)
            {
                int chunk = (thread * own + i) % chunks;
                if (Interlocked.Exchange(ref _claimed[l * _maxChunks + chunk], 1) != 0) continue;
                // A failing chunk still counts as done, or the other threads would wait forever.
                try { layers[l].Run<TVec>(_tensorTable, scratch, chunk, chunks); }
                catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
                Interlocked.Increment(ref _doneChunks[l]);
            }
        }
        if (thread == 0)
        {
            WaitUntil(ref _doneChunks[^1], _chunks[^1]);
            if (ticks != null) AddTicks(ticks, layers.Length - 1, ref mark);
        }
    }

    private static void AddTicks(long[] ticks, int layer, ref long mark)
    {
        long now = Stopwatch.GetTimestamp();
        ticks[layer] += now - mark;
        mark = now;
    }

    /// <summary>Spins (yielding, never sleeping) until <paramref name="location"/> equals <paramref name="value"/>: the waits between layers last microseconds.</summary>
    private static void WaitUntil(ref int location, int value)
    {
        var spin = new SpinWait();
        while (Volatile.Read(ref location) != value) spin.SpinOnce(sleep1Threshold: -1);
    }

    /// <summary>Stops the worker threads. The workspace cannot run afterwards.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stopping = true;
        StartWorkers();
        foreach (Thread worker in _workers) worker.Join();
        foreach (SemaphoreSlim start in _start) start.Dispose();
    }
}
