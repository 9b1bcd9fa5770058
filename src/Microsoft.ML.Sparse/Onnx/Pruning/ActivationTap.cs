using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// Runs the sparse engine on a model cut at one tensor: the nodes that compute it, with it as the only output, so the
/// engine writes that tensor (CHW, or flat) for each calibration input. The cut shares the model's tensors (no copy)
/// and is planned like any model, so the activations are exactly what the engine computes in the full network.
/// </summary>
internal static class ActivationTap
{
    /// <summary>The model up to <paramref name="tensor"/>: its ancestor nodes in their order, the initializers they
    /// read, and <paramref name="tensor"/> as the graph output.</summary>
    public static byte[] Cut(ModelProto model, string tensor)
    {
        var graph = model.Graph;
        var producers = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
            foreach (string output in graph.Node[i].Output) producers[output] = i;

        var needed = new bool[graph.Node.Count];
        var pending = new Stack<string>([tensor]);
        var read = new HashSet<string>(StringComparer.Ordinal);
        while (pending.TryPop(out string? name))
        {
            if (!read.Add(name) || !producers.TryGetValue(name, out int node) || needed[node]) continue;
            needed[node] = true;
            foreach (string input in graph.Node[node].Input) if (input.Length > 0) pending.Push(input);
        }

        var cut = new GraphProto { Name = graph.Name };
        for (int i = 0; i < graph.Node.Count; i++) if (needed[i]) cut.Node.Add(graph.Node[i]);
        cut.Initializer.AddRange(graph.Initializer.Where(t => read.Contains(t.Name)));
        cut.SparseInitializer.AddRange(graph.SparseInitializer.Where(s => s.Values is not null && read.Contains(s.Values.Name)));
        var constants = graph.Initializer.Select(t => t.Name).Concat(graph.SparseInitializer.Where(s => s.Values is not null).Select(s => s.Values.Name)).ToHashSet(StringComparer.Ordinal);
        // Runtime inputs always; inputs that name initializers (older exporters list them) only when kept.
        cut.Input.AddRange(graph.Input.Where(input => !constants.Contains(input.Name) || read.Contains(input.Name)));
        cut.Output.Add(new ValueInfoProto { Name = tensor });

        var result = new ModelProto { IrVersion = model.IrVersion, ProducerName = model.ProducerName, Graph = cut };
        result.OpsetImport.AddRange(model.OpsetImport);
        return result.ToByteArray();
    }

    /// <summary>
    /// Feeds every calibration input through <paramref name="model"/> cut at <paramref name="tensor"/> and adds the
    /// tensor's values at every <paramref name="stride"/>-th row and column (a strided 1x1 convolution's samples) to
    /// <paramref name="statistics"/>; with <paramref name="dense"/>, also runs the dense model's cut on the same input
    /// and adds the cross moment and dense means. Holds one image's activations at a time.
    /// </summary>
    public static void Collect(ModelProto model, ModelProto? dense, string tensor, int stride, CalibrationInputs inputs, LayerStatistics statistics, CancellationToken cancellationToken)
    {
        var pruned = new Cut1(model, tensor, stride, inputs.Geometry, statistics.Channels, cancellationToken);
        var reference = dense is null ? null : new Cut1(dense, tensor, stride, inputs.Geometry, statistics.Channels, cancellationToken);
        try
        {
            foreach (float[] input in inputs.Enumerate(cancellationToken))
            {
                var (values, pixels) = pruned.Run(input);
                statistics.Add(values, pixels);
                if (reference is not null) statistics.AddCross(reference.Run(input).Values, values, pixels);
            }
        }
        finally
        {
            pruned.Dispose();
            reference?.Dispose();
        }
    }

    /// <summary>One model cut at one tensor, planned in the engine, giving the tensor's samples for an input.</summary>
    private sealed class Cut1 : IDisposable
    {
        private readonly SparseModel? _engine;
        private readonly SparseWorkspace? _workspace;
        private readonly float[]? _output;
        private readonly int _channels, _height, _width, _stride;
        private float[]? _samples;
        private readonly string _tensor;

        public Cut1(ModelProto model, string tensor, int stride, ImageGeometry geometry, int channels, CancellationToken cancellationToken)
        {
            _tensor = tensor;
            _stride = stride;
            _channels = channels;
            var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            string runtimeInput = model.Graph.Input.First(i => !initializers.Contains(i.Name)).Name;
            IReadOnlyList<int> shape;
            if (tensor == runtimeInput)
            {
                // A layer on the image itself: the input is the activation.
                if (geometry.Hwc) throw new NotSupportedException($"tensor '{tensor}' is an NHWC image input");
                shape = [geometry.Channels, geometry.Height, geometry.Width];
            }
            else
            {
                _engine = SparseModel.Load(Cut(model, tensor), new SparseModelOptions { Threads = 1 }, cancellationToken);
                _workspace = _engine.CreateWorkspace();
                _output = new float[_engine.OutputLength];
                shape = _engine.OutputShape;
            }
            (_height, _width) = shape.Count == 1 ? (1, 1) : shape.Count == 3 ? (shape[1], shape[2]) : (0, 0);
            if (shape[0] != channels || _height == 0)
                throw new NotSupportedException($"tensor '{tensor}' has shape [{string.Join(",", shape)}], not {channels} channels");
        }

        public (float[] Values, int Pixels) Run(float[] input)
        {
            float[] values = input;
            if (_engine is not null)
            {
                _engine.Run(input, _output, _workspace!);
                values = _output!;
            }
            if (_stride == 1) return (values, _height * _width);
            int rows = (_height - 1) / _stride + 1, columns = (_width - 1) / _stride + 1;
            _samples ??= new float[_channels * rows * columns];
            int k = 0;
            for (int c = 0; c < _channels; c++)
                for (int y = 0; y < _height; y += _stride)
                    for (int x = 0; x < _width; x += _stride) _samples[k++] = values[(c * _height + y) * _width + x];
            return (_samples, rows * columns);
        }

        public override string ToString() => _tensor;

        public void Dispose() => _workspace?.Dispose();
    }
}
