using System.Globalization;
using System.Text;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// A planned, immutable CHW network. It is safe to share between threads: <see cref="Run"/> may be called concurrently as
/// long as each concurrent caller passes its own <see cref="SparseWorkspace"/> (from <see cref="CreateWorkspace"/>).
/// One inference allocates nothing on the managed heap.
/// </summary>
/// <remarks>
/// The network holds its 1x1 weights in native memory: <see cref="Dispose"/> frees it at once (a finalizer frees it
/// otherwise). Inferences already running when it is called finish first; later calls to <see cref="Run"/> and
/// <see cref="CreateWorkspace"/> throw <see cref="ObjectDisposedException"/>, also through workspaces made before.
/// </remarks>
public sealed class SparseNetwork : IDisposable
{
    private readonly TensorHandle _input, _output;
    /// <summary>Inferences in <see cref="Run"/> now; <see cref="Dispose"/> waits for them before freeing the weights.</summary>
    private int _running;
    private int _disposed;

    internal SparseNetwork(PlannedLayer[] layers, TensorHandle input, TensorHandle output, int tensorCount, SparseNetworkOptions options)
    {
        PlannedLayers = layers;
        _input = input;
        _output = output;
        Options = options;
        Width = SimdSupport.Resolve(options.MaxSimdWidth);
        Threads = options.Threads;
        TensorCount = tensorCount;
        var external = new HashSet<int> { input.Id, output.Id };
        PlaneStrides = PlaneLayout.Assign(layers, tensorCount, external);
        TensorOffsets = BufferPlanner.Assign(layers, tensorCount, external, PlaneStrides, out int activationFloats);
        ActivationFloats = activationFloats;
        ScratchFloatsPerThread = BufferPlanner.RoundUp(layers.Select(layer => layer.ScratchFloats).DefaultIfEmpty(0).Max());
        string suffix = $" ({Width})";
        Layers = layers.Select(layer => new LayerInfo(layer.Name, layer.Kind, layer.Inputs[0], layer.Output, layer.Sparsity,
            layer.KernelName + suffix, layer.DenseMacs, layer.ExecutedMacs)).ToArray();
    }

    internal PlannedLayer[] PlannedLayers { get; }
    internal SimdWidth Width { get; }
    internal int Threads { get; }
    internal int TensorCount { get; }
    internal int[] TensorOffsets { get; }

    /// <summary>Floats between channel planes by tensor id (<see cref="PlaneLayout"/>).</summary>
    internal int[] PlaneStrides { get; }
    internal int ActivationFloats { get; }
    internal int ScratchFloatsPerThread { get; }

    /// <summary>Input shape, CHW.</summary>
    public TensorHandle InputShape => _input;

    /// <summary>Output shape, CHW.</summary>
    public TensorHandle OutputShape => _output;

    /// <summary>The layers in execution order, with the plan's decisions.</summary>
    public IReadOnlyList<LayerInfo> Layers { get; }

    /// <summary>The options the network was planned with (a copy: changing it affects neither this network nor its workspaces).</summary>
    public SparseNetworkOptions Options { get; }

    /// <summary>
    /// Allocates the activation arena (and starts <c>Options.Threads - 1</c> background worker threads) for one concurrent caller.
    /// Dispose the workspace to stop its workers.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The network was disposed.</exception>
    public SparseWorkspace CreateWorkspace()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Interlocked.Exchange(ref _warmWorkspace, null) ?? new(this);
    }

    /// <summary>The one-thread workspace <see cref="WarmUp"/> ran in, handed to the first caller of <see cref="CreateWorkspace"/>.</summary>
    private SparseWorkspace? _warmWorkspace;

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Runs one image: <paramref name="input"/> has <c>InputShape.Length</c> floats, <paramref name="output"/> receives <c>OutputShape.Length</c>.
    /// Not thread-safe per workspace: concurrent calls need distinct workspaces.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The network or the workspace was disposed.</exception>
    public unsafe void Run(ReadOnlySpan<float> input, Span<float> output, SparseWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        if (!ReferenceEquals(workspace.Network, this))
            throw new ArgumentException("The workspace was created by a different SparseNetwork; use this network's CreateWorkspace().", nameof(workspace));
        if (input.Length != _input.Length)
            throw new ArgumentException($"Input has {input.Length} floats but the network expects {_input.Length} ([{_input.Channels}, {_input.Height}, {_input.Width}]).", nameof(input));
        if (output.Length != _output.Length)
            throw new ArgumentException($"Output has {output.Length} floats but the network produces {_output.Length} ([{_output.Channels}, {_output.Height}, {_output.Width}]).", nameof(output));
        if (input.Overlaps(output))
            throw new ArgumentException("The input and output spans overlap; the network reads its input while writing the output.", nameof(output));
        // Counted in before the check, so that Dispose, which sets the flag and then waits for the count, cannot free
        // the weights under a running inference (both sides use full fences).
        Interlocked.Increment(ref _running);
        try
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            if (_input.Id == _output.Id)
            {
                input.CopyTo(output);
                return;
            }
            fixed (float* inputPointer = input)
            fixed (float* outputPointer = output)
            {
                // The input is only read: no layer writes to its input tensors.
                workspace.Execute(inputPointer, outputPointer);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    /// <summary>
    /// Largest workspace (activations and scratch, in floats: 16 MiB) that <see cref="WarmUp"/> allocates and runs. Bigger
    /// plans (large images) spend far longer in each inference than in compiling the kernels, so they are not warmed up.
    /// </summary>
    internal const long WarmUpMaxFloats = 4 << 20;

    /// <summary>
    /// Runs one inference on a zero image, so the JIT compiles every kernel instantiation this plan runs (the kernels are
    /// marked for full optimization, so that is their final code) before the caller's first inference. With one thread
    /// the workspace it ran in (its memory now touched) becomes the first one <see cref="CreateWorkspace"/> returns; a
    /// multi-threaded one is disposed, so no worker threads outlive a network nobody scores with. Best effort: a layer
    /// that fails here fails the caller's first inference the same way. See docs/design.md, "Warm-up".
    /// </summary>
    internal void WarmUp()
    {
        if (ActivationFloats + (long)Threads * ScratchFloatsPerThread > WarmUpMaxFloats) return;
        var workspace = new SparseWorkspace(this);
        try
        {
            Run(new float[_input.Length], new float[_output.Length], workspace);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            workspace.Dispose();
            return;
        }
        if (Threads == 1) _warmWorkspace = workspace;
        else workspace.Dispose();
    }

    /// <summary>
    /// Frees the native weights now, once the inferences already running have finished. Workspaces stay the callers' to
    /// dispose. Calling it again does nothing.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        var spin = new SpinWait();
        while (Volatile.Read(ref _running) != 0) spin.SpinOnce();
        Interlocked.Exchange(ref _warmWorkspace, null)?.Dispose();
        foreach (PlannedLayer layer in PlannedLayers) layer.Dispose();
    }

    /// <summary>A table of layers, shapes, sparsity, chosen kernel and dense vs executed MACs, with totals.</summary>
    public string Describe()
    {
        const string row = "{0,-28} {1,-18} {2,-16} {3,-16} {4,8} {5,-36} {6,14} {7,14}";
        var text = new StringBuilder();
        text.AppendLine(string.Format(CultureInfo.InvariantCulture, row, "Layer", "Kind", "Input", "Output", "Sparsity", "Kernel", "Dense MACs", "Executed MACs"));
        foreach (LayerInfo layer in Layers)
            text.AppendLine(string.Format(CultureInfo.InvariantCulture, row, layer.Name, layer.Kind, Shape(layer.Input), Shape(layer.Output),
                layer.Sparsity.ToString("P1", CultureInfo.InvariantCulture), layer.Kernel, layer.DenseMacs.ToString("N0", CultureInfo.InvariantCulture),
                layer.ExecutedMacs.ToString("N0", CultureInfo.InvariantCulture)));
        long dense = Layers.Sum(layer => layer.DenseMacs), executed = Layers.Sum(layer => layer.ExecutedMacs);
        text.AppendLine(string.Format(CultureInfo.InvariantCulture, row, $"Total ({Layers.Count} layers)", "", Shape(InputShape), Shape(OutputShape), "",
            $"threads {Threads}, {Width}", dense.ToString("N0", CultureInfo.InvariantCulture), executed.ToString("N0", CultureInfo.InvariantCulture)));
        return text.ToString();

        static string Shape(TensorHandle t) => $"[{t.Channels},{t.Height},{t.Width}]";
    }
}
