using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// A parsed ONNX model plus where it came from: the source name used in every error message, and the folder that
/// external tensor data is resolved against (only when the model was loaded from a file).
/// </summary>
internal sealed unsafe class OnnxModelFile
{
    /// <summary>Default-domain opsets whose operator semantics the importer implements.</summary>
    public const int MinOpset = 7, MaxOpset = 21;

    /// <summary>Initializers whose raw_data was split off before parsing (<see cref="InitializerDataSplit"/>), decoded from the file's bytes.</summary>
    private readonly Dictionary<TensorProto, OnnxTensor> _decoded = new(ReferenceEqualityComparer.Instance);

    private OnnxModelFile(ModelProto model, string source, string? directory, int opset)
    {
        Model = model;
        Source = source;
        Directory = directory;
        Opset = opset;
    }

    public ModelProto Model { get; }

    /// <summary>Size of the serialized model (its weights are most of it).</summary>
    public long ByteLength { get; private init; }

    public GraphProto Graph => Model.Graph;

    /// <summary>The file path, or "(stream)"/"(bytes)".</summary>
    public string Source { get; }

    /// <summary>Folder of the model file, for external data; null when loaded from a stream or bytes.</summary>
    public string? Directory { get; }

    /// <summary>Version of the default ("" / "ai.onnx") operator set.</summary>
    public int Opset { get; }

    /// <param name="path">The model file.</param>
    /// <param name="splitWeights">
    /// Decode the initializers while the file is mapped, without protobuf's copy of their raw_data (for the engine, which
    /// only reads them through <see cref="ReadTensor(TensorProto)"/>); false keeps the parsed model complete (the pruner rewrites it).
    /// </param>
    public static OnnxModelFile Read(string path, bool splitWeights = false)
    {
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath)) throw new FileNotFoundException($"ONNX model '{fullPath}' not found.", fullPath);
        using var file = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        if (!file.CanSeek || file.Length == 0 || file.Length > int.MaxValue) // a protobuf message is under 2 GiB; let the parser word the error
            return Parse(ReadAll(file), fullPath, Path.GetDirectoryName(fullPath), splitWeights);
        // Parsed straight from the mapped file: the weights are copied once, into the parsed tensors, where a stream
        // would go through its buffer and protobuf's chunked copy of every large field (two more copies of the weights).
        using var mapping = MemoryMappedFile.CreateFromFile(file, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        using var view = mapping.CreateViewAccessor(0, file.Length, MemoryMappedFileAccess.Read);
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        try
        {
            return Parse(new ReadOnlySpan<byte>(start + view.PointerOffset, (int)file.Length), fullPath, Path.GetDirectoryName(fullPath), splitWeights);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    /// <summary>As <see cref="Read(string, bool)"/>, from a stream.</summary>
    public static OnnxModelFile Read(Stream stream, bool splitWeights = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return Parse(ReadAll(stream), "(stream)", directory: null, splitWeights);
    }

    /// <param name="bytes">The model.</param>
    /// <param name="source">What errors call the model: the path the bytes were read from, if any.</param>
    /// <param name="splitWeights">As in <see cref="Read(string, bool)"/>.</param>
    public static OnnxModelFile Read(ReadOnlyMemory<byte> bytes, string source = "(bytes)", bool splitWeights = false) =>
        Parse(bytes.Span, source, directory: null, splitWeights);

    private static ReadOnlySpan<byte> ReadAll(Stream stream)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
    }

    /// <summary>
    /// Parses the bytes of a model in memory, with protobuf's default nesting limit (100; ONNX models nest a few levels:
    /// model, graph, node, attribute, tensor).
    /// </summary>
    private static OnnxModelFile Parse(ReadOnlySpan<byte> bytes, string source, string? directory, bool splitWeights)
    {
        var split = splitWeights ? InitializerDataSplit.Split(bytes) : null;
        ModelProto model;
        try
        {
            model = split is { } parts ? ModelProto.Parser.ParseFrom(parts.Model) : ModelProto.Parser.ParseFrom(bytes);
            if (split is { } check && check.RawData.Count != model.Graph?.Initializer.Count)
            {
                // Not the layout the split assumed (cannot happen with a well-formed model): parse it whole instead.
                split = null;
                model = ModelProto.Parser.ParseFrom(bytes);
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidOnnxModelException(source, $"not a readable ONNX ModelProto (truncated, corrupt or not a model): {e.Message}", e);
        }
        if (model.Graph is null || model.IrVersion <= 0 || model.OpsetImport.Count == 0)
            throw new InvalidOnnxModelException(source,
                "the protobuf is not an ONNX ModelProto (it lacks a graph, an ir_version or an opset_import).");

        var defaultOpset = model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (defaultOpset is null)
            throw new UnsupportedOnnxModelException(source, null, null,
                $"the model does not import the default ONNX operator set; supported: opsets {MinOpset} to {MaxOpset} of domain \"\" (ai.onnx).");
        if (defaultOpset.Version < MinOpset || defaultOpset.Version > MaxOpset)
            throw new UnsupportedOnnxModelException(source, null, null,
                $"default-domain opset {defaultOpset.Version} is not supported; supported: opsets {MinOpset} to {MaxOpset}.");
        var file = new OnnxModelFile(model, source, directory, (int)defaultOpset.Version) { ByteLength = bytes.Length };
        if (split is { } weights)
            for (int i = 0; i < weights.RawData.Count; i++)
                if (weights.RawData[i] is { } range && model.Graph.Initializer[i].DataLocation != TensorProto.Types.DataLocation.External)
                    file._decoded[model.Graph.Initializer[i]] = file.ReadTensor(model.Graph.Initializer[i], hasRawData: true, bytes[range]);
        return file;
    }

    /// <summary>
    /// Drops the initializers' bytes once they are decoded (<see cref="GraphLowering"/>), so the protobuf copy of the weights
    /// can be collected while the rest of the load runs.
    /// </summary>
    public void ReleaseInitializers()
    {
        Graph.Initializer.Clear();
        Graph.SparseInitializer.Clear();
    }

    public InvalidOnnxModelException Invalid(string message, Exception? inner = null) => new(Source, message, inner);

    public UnsupportedOnnxModelException Unsupported(NodeProto? node, string message) =>
        new(Source, node is null ? null : NodeName(node), node?.OpType, message);

    /// <summary>A node's name, or its first output when the exporter left it unnamed.</summary>
    public static string NodeName(NodeProto node) =>
        node.Name.Length > 0 ? node.Name : node.Output.Count > 0 ? node.Output[0] : $"<unnamed {node.OpType}>";

    /// <summary>Decodes a tensor, checking its declared shape against the data present before allocating anything.</summary>
    /// <remarks>An initializer whose raw_data was split off is decoded already; it is handed out once (the caller owns its arrays).</remarks>
    public OnnxTensor ReadTensor(TensorProto tensor)
    {
        if (_decoded.Remove(tensor, out var decoded)) return decoded;
        return ReadTensor(tensor, tensor.HasRawData, tensor.HasRawData ? tensor.RawData.Span : default);
    }

    /// <param name="tensor">The tensor's fields.</param>
    /// <param name="hasRawData">Whether it has raw_data.</param>
    /// <param name="rawData">Its raw_data.</param>
    private OnnxTensor ReadTensor(TensorProto tensor, bool hasRawData, ReadOnlySpan<byte> rawData)
    {
        string name = tensor.Name;
        long[] dims = tensor.Dims.ToArray();
        long count = OnnxTensor.ElementCount(dims);
        if (count < 0)
            throw Invalid($"tensor '{name}' declares dims [{string.Join(",", dims)}], which are negative or too large for memory.");
        var type = (TensorProto.Types.DataType)tensor.DataType;
        int elementSize = ElementSize(type)
            ?? throw Unsupported(null, $"tensor '{name}' has data type {type}; supported: float, float16, bfloat16, double and integer/bool types.");

        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
            return Decode(type, dims, ReadExternal(tensor, count * elementSize));
        if (hasRawData)
        {
            CheckCount(name, "raw_data bytes", count * elementSize, rawData.Length);
            return Decode(type, dims, rawData);
        }
        return DecodeTyped(tensor, type, dims, count);
    }

    /// <summary>Densifies a COO sparse initializer (linear [NNZ] or coordinate [NNZ, rank] indices).</summary>
    public OnnxTensor ReadSparseTensor(SparseTensorProto sparse)
    {
        if (sparse.Values is null || sparse.Indices is null)
            throw Invalid("a sparse_initializer lacks its values or indices.");
        string name = sparse.Values.Name;
        long[] dims = sparse.Dims.ToArray();
        long count = OnnxTensor.ElementCount(dims);
        if (count < 0 || count > OnnxTensor.MaxSynthesizedElements)
            throw Invalid($"sparse tensor '{name}' declares dims [{string.Join(",", dims)}], which are negative or too large to densify (limit {OnnxTensor.MaxSynthesizedElements} elements).");
        OnnxTensor values = ReadTensor(sparse.Values);
        OnnxTensor indices = ReadTensor(sparse.Indices);
        if (!values.IsFloat)
            throw Unsupported(null, $"sparse tensor '{name}' holds integers; only float sparse initializers are supported.");
        int nnz = values.Length;
        long[] index = indices.AsLongs();
        bool linear = indices.Rank == 1 && index.Length == nnz;
        bool coordinates = indices.Rank == 2 && indices.Dims[0] == nnz && indices.Dims[1] == dims.Length;
        if (values.Rank != 1 || !(linear || coordinates))
            throw Invalid($"sparse tensor '{name}': indices [{string.Join(",", indices.Dims)}] do not match {nnz} values of a rank-{dims.Length} tensor.");

        var dense = new float[count];
        for (int i = 0; i < nnz; i++)
        {
            long position = linear ? index[i] : LinearIndex(index.AsSpan(i * dims.Length, dims.Length), dims);
            if (position < 0 || position >= count)
                throw Invalid($"sparse tensor '{name}': index {i} lies outside dims [{string.Join(",", dims)}].");
            dense[position] = values.Floats![i];
        }
        return OnnxTensor.FromFloats(dims, dense);
    }

    private static long LinearIndex(ReadOnlySpan<long> coordinate, long[] dims)
    {
        long position = 0;
        for (int axis = 0; axis < dims.Length; axis++)
        {
            if (coordinate[axis] < 0 || coordinate[axis] >= dims[axis]) return -1;
            position = position * dims[axis] + coordinate[axis];
        }
        return position;
    }

    private void CheckCount(string name, string what, long expected, long actual)
    {
        if (expected != actual)
            throw Invalid($"tensor '{name}' declares {expected} {what} from its dims but holds {actual}.");
    }

    private byte[] ReadExternal(TensorProto tensor, long byteCount)
    {
        string name = tensor.Name;
        if (Directory is null)
            throw Invalid($"tensor '{name}' keeps its data in an external file; external data can only be read when the model is loaded from a file path.");
        string location = "";
        long offset = 0, length = -1;
        foreach (var entry in tensor.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset" when long.TryParse(entry.Value, out long o) && o >= 0: offset = o; break;
                case "length" when long.TryParse(entry.Value, out long l) && l >= 0: length = l; break;
                case "offset" or "length": throw Invalid($"tensor '{name}' has an invalid external_data {entry.Key} '{entry.Value}'.");
            }
        }
        if (location.Length == 0) throw Invalid($"tensor '{name}' is external but names no location.");
        string root = Path.TrimEndingDirectorySeparator(Directory) + Path.DirectorySeparatorChar;
        string path = Path.GetFullPath(Path.Combine(root, location));
        if (!path.StartsWith(root, StringComparison.Ordinal))
            throw Invalid($"tensor '{name}': external data location '{location}' escapes the model's folder.");
        if (!File.Exists(path))
            throw Invalid($"tensor '{name}': external data file '{path}' not found.");
        if (length >= 0) CheckCount(name, "external bytes", byteCount, length);
        if (byteCount > Array.MaxLength)
            throw Unsupported(null, $"tensor '{name}' holds {byteCount} bytes, more than one array can; supported: tensors under 2 GiB.");

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (offset > file.Length || file.Length - offset < byteCount)
            throw Invalid($"tensor '{name}': external file '{path}' has {file.Length} bytes, too few for {byteCount} bytes at offset {offset}.");
        var bytes = new byte[byteCount];
        file.Position = offset;
        file.ReadExactly(bytes);
        return bytes;
    }

    private static int? ElementSize(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 4,
        TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 => 8,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16
            or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16 => 2,
        TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => 1,
        _ => null,
    };

    private static bool IsFloatType(TensorProto.Types.DataType type) => type is TensorProto.Types.DataType.Float
        or TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16;

    /// <summary>Decodes little-endian fixed-width elements; the byte count was checked against the dims.</summary>
    private static OnnxTensor Decode(TensorProto.Types.DataType type, long[] dims, ReadOnlySpan<byte> bytes)
    {
        int size = ElementSize(type)!.Value;
        int count = bytes.Length / size;
        if (type == TensorProto.Types.DataType.Float && BitConverter.IsLittleEndian)
            return OnnxTensor.FromFloats(dims, MemoryMarshal.Cast<byte, float>(bytes).ToArray());
        if (IsFloatType(type))
        {
            var floats = new float[count];
            for (int i = 0; i < count; i++)
            {
                var element = bytes.Slice(i * size, size);
                floats[i] = type switch
                {
                    TensorProto.Types.DataType.Float => BinaryPrimitives.ReadSingleLittleEndian(element),
                    TensorProto.Types.DataType.Double => (float)BinaryPrimitives.ReadDoubleLittleEndian(element),
                    TensorProto.Types.DataType.Float16 => (float)BinaryPrimitives.ReadHalfLittleEndian(element),
                    _ => BFloat16ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(element)),
                };
            }
            return OnnxTensor.FromFloats(dims, floats);
        }
        var longs = new long[count];
        for (int i = 0; i < count; i++)
        {
            var element = bytes.Slice(i * size, size);
            longs[i] = type switch
            {
                TensorProto.Types.DataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(element),
                TensorProto.Types.DataType.Uint64 => (long)BinaryPrimitives.ReadUInt64LittleEndian(element),
                TensorProto.Types.DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(element),
                TensorProto.Types.DataType.Uint32 => BinaryPrimitives.ReadUInt32LittleEndian(element),
                TensorProto.Types.DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(element),
                TensorProto.Types.DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(element),
                TensorProto.Types.DataType.Int8 => (sbyte)element[0],
                _ => element[0],
            };
        }
        return OnnxTensor.FromLongs(dims, longs);
    }

    /// <summary>Decodes the typed repeated fields (float_data, int32_data, int64_data, double_data, uint64_data).</summary>
    private OnnxTensor DecodeTyped(TensorProto tensor, TensorProto.Types.DataType type, long[] dims, long count)
    {
        string name = tensor.Name;
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                CheckCount(name, "float_data values", count, tensor.FloatData.Count);
                return OnnxTensor.FromFloats(dims, tensor.FloatData.ToArray());
            case TensorProto.Types.DataType.Double:
                CheckCount(name, "double_data values", count, tensor.DoubleData.Count);
                return OnnxTensor.FromFloats(dims, tensor.DoubleData.Select(v => (float)v).ToArray());
            case TensorProto.Types.DataType.Int64:
                CheckCount(name, "int64_data values", count, tensor.Int64Data.Count);
                return OnnxTensor.FromLongs(dims, tensor.Int64Data.ToArray());
            case TensorProto.Types.DataType.Uint32 or TensorProto.Types.DataType.Uint64:
                CheckCount(name, "uint64_data values", count, tensor.Uint64Data.Count);
                return OnnxTensor.FromLongs(dims, tensor.Uint64Data.Select(v => (long)v).ToArray());
            case TensorProto.Types.DataType.Float16:
                CheckCount(name, "int32_data values", count, tensor.Int32Data.Count);
                return OnnxTensor.FromFloats(dims, tensor.Int32Data.Select(v => (float)BitConverter.UInt16BitsToHalf((ushort)v)).ToArray());
            case TensorProto.Types.DataType.Bfloat16:
                CheckCount(name, "int32_data values", count, tensor.Int32Data.Count);
                return OnnxTensor.FromFloats(dims, tensor.Int32Data.Select(v => BFloat16ToFloat((ushort)v)).ToArray());
            default: // int32, int16, uint16, int8, uint8, bool all live in int32_data
                CheckCount(name, "int32_data values", count, tensor.Int32Data.Count);
                return OnnxTensor.FromLongs(dims, tensor.Int32Data.Select(v => (long)v).ToArray());
        }
    }

    private static float BFloat16ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
}
