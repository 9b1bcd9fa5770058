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
/// With N threads the caller runs part 0 of every layer and N - 1 background workers run the others; a spinning barrier
/// separates layers. Workers wait for the next inference spinning briefly, then blocking, so an idle workspace costs no CPU.
/// </remarks>
public sealed unsafe class SparseWorkspace : IDisposable
{
    private readonly float[] _arena;
    private readonly nint[] _tensors;
    private readonly float** _tensorTable;
    private readonly float* _scratch;
    private readonly int _parts;
    private readonly Thread[] _workers;
    private readonly SemaphoreSlim[] _start;
    private readonly SpinBarrier _barrier;
    private volatile bool _stopping;
    private bool _disposed;
    private Exception? _failure;

    internal SparseWorkspace(SparseNetwork network)
    {
        Network = network;
        _parts = network.Threads;
        long floats = network.ActivationFloats + (long)_parts * network.ScratchFloatsPerThread + BufferPlanner.AlignFloats;
        _arena = GC.AllocateArray<float>(checked((int)floats), pinned: true);
        float* arenaStart = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_arena));
        float* aligned = (float*)(((nint)arenaStart + 63) & ~(nint)63);

        _tensors = GC.AllocateArray<nint>(network.TensorCount, pinned: true);
        _tensorTable = (float**)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_tensors));
        for (int id = 0; id < network.TensorCount; id++)
            if (network.TensorOffsets[id] >= 0) _tensors[id] = (nint)(aligned + network.TensorOffsets[id]);
        _scratch = aligned + network.ActivationFloats;

        _barrier = new SpinBarrier(_parts);
        _workers = new Thread[_parts - 1];
        _start = new SemaphoreSlim[_parts - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _start[i] = new SemaphoreSlim(0);
            int part = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(part)) { IsBackground = true, Name = $"SparseWorkspace worker {part}" };
            _workers[i].Start();
        }
    }

    internal SparseNetwork Network { get; }

    /// <summary>Runs every layer with the network input and output at the given addresses.</summary>
    internal void Execute(float* input, float* output)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _tensors[Network.InputShape.Id] = (nint)input;
        _tensors[Network.OutputShape.Id] = (nint)output;
        if (_parts == 1)
        {
            RunPart(0);
            return;
        }
        _failure = null;
        foreach (SemaphoreSlim start in _start) start.Release();
        RunPart(0);
        // The last layer's barrier has been passed, so every worker is done with this inference.
        if (_failure is { } failure) throw new InvalidOperationException("A SparseNetwork worker thread failed.", failure);
    }

    private void WorkerLoop(int part)
    {
        SemaphoreSlim start = _start[part - 1];
        while (true)
        {
            start.Wait();
            if (_stopping) return;
            RunPart(part);
        }
    }

    private void RunPart(int part)
    {
        switch (Network.Width)
        {
            case SimdWidth.Vector512: RunLayers<Float512>(part); break;
            case SimdWidth.Vector256: RunLayers<Float256>(part); break;
            case SimdWidth.Vector128: RunLayers<Float128>(part); break;
            default: RunLayers<Scalar>(part); break;
        }
    }

    private void RunLayers<TVec>(int part) where TVec : struct, IFloatVector<TVec>
    {
        PlannedLayer[] layers = Network.PlannedLayers;
        float* scratch = _scratch + (long)part * Network.ScratchFloatsPerThread;
        if (_parts == 1)
        {
            foreach (PlannedLayer layer in layers) layer.Run<TVec>(_tensorTable, scratch, 0, 1);
            return;
        }
        foreach (PlannedLayer layer in layers)
        {
            // A failing part must still reach every barrier, or the other threads would wait forever.
            try { layer.Run<TVec>(_tensorTable, scratch, part, _parts); }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
            _barrier.SignalAndWait();
        }
    }

    /// <summary>Stops the worker threads. The workspace cannot run afterwards.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stopping = true;
        foreach (SemaphoreSlim start in _start) start.Release();
        foreach (Thread worker in _workers) worker.Join();
        foreach (SemaphoreSlim start in _start) start.Dispose();
    }
}

/// <summary>A reusable barrier that spins (yielding, never sleeping), for the microsecond gaps between layers.</summary>
internal sealed class SpinBarrier(int parties)
{
    private int _arrived;
    private int _phase;

    public void SignalAndWait()
    {
        int phase = Volatile.Read(ref _phase);
        if (Interlocked.Increment(ref _arrived) == parties)
        {
            _arrived = 0;
            Volatile.Write(ref _phase, phase + 1);
            return;
        }
        var spin = new SpinWait();
        while (Volatile.Read(ref _phase) == phase) spin.SpinOnce(sleep1Threshold: -1);
    }
}
