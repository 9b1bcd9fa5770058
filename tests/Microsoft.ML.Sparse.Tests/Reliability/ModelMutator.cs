using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Tests.Reliability;

/// <summary>
/// Seeded mutations of an ONNX model: byte-level damage (bit flips, truncation, rewritten length prefixes) and
/// structure-aware edits of the parsed <see cref="ModelProto"/> (out-of-range attributes and dims, huge declared
/// tensors, cycles, missing or dangling values, duplicated outputs, wrong data types). Each mutation returns the new
/// bytes and a description, so a failing case can be replayed from its seed.
/// </summary>
internal sealed class ModelMutator
{
    /// <summary>Values that break shape arithmetic: zero, negative, off by one, and sizes no buffer can hold.</summary>
    private static readonly long[] HostileInts =
        [0, -1, -2, 1, 2, 3, 7, 1000, 1 << 20, int.MaxValue, 1L << 32, 1L << 40, long.MaxValue, long.MinValue, -(1L << 40)];

    private static readonly int[] DataTypes = [0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 99, -1];

    private static readonly string[] OpTypes =
        ["Conv", "Relu", "Add", "Mul", "MaxPool", "Gemm", "MatMul", "Reshape", "Flatten", "Softmax", "Transpose", "Concat",
         "GlobalAveragePool", "Clip", "BatchNormalization", "Identity", "Shape", "Gather", "Squeeze", "NoSuchOp", ""];

    private readonly byte[] _original;
    private readonly ModelProto _model;
    private readonly List<(int Offset, int Size, int Length)> _lengthPrefixes;
    public ModelMutator(byte[] original)
    {
        _original = original;
        _model = ModelProto.Parser.ParseFrom(original);
        _lengthPrefixes = [];
        FindLengthPrefixes(original, 0, original.Length, depth: 0);
    }

    /// <summary>One mutant; the same <paramref name="seed"/> always gives the same bytes, so a case replays on its own.</summary>
    public (byte[] Bytes, string Description) Mutate(int seed, bool structuralOnly = false)
    {
        var random = new Random(seed);
        if (!structuralOnly && random.Next(2) == 0) return MutateBytes(random);
        var model = _model.Clone();
        int count = 1 + (random.Next(4) == 0 ? random.Next(1, 3) : 0);
        var what = new List<string>();
        for (int i = 0; i < count; i++) what.Add(MutateStructure(model, random));
        return (model.ToByteArray(), string.Join("; ", what));
    }

    private (byte[], string) MutateBytes(Random random)
    {
        byte[] bytes = (byte[])_original.Clone();
        switch (random.Next(4))
        {
            case 0:
            {
                int flips = 1 + random.Next(8);
                for (int i = 0; i < flips; i++)
                {
                    // Half the flips land in the first KiB, where the graph structure (not weight bytes) usually starts.
                    int at = random.Next(2) == 0 ? random.Next(Math.Min(1024, bytes.Length)) : random.Next(bytes.Length);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                }
                return (bytes, $"{flips} bit flip(s)");
            }
            case 1:
            {
                int length = random.Next(bytes.Length);
                return (bytes[..length], $"truncated to {length} of {bytes.Length} bytes");
            }
            case 2:
            {
                int at = random.Next(bytes.Length), run = 1 + random.Next(16);
                byte value = random.Next(2) == 0 ? (byte)0xFF : (byte)random.Next(256);
                bytes.AsSpan(at, Math.Min(run, bytes.Length - at)).Fill(value);
                return (bytes, $"{run} byte(s) at {at} set to 0x{value:X2}");
            }
            default:
                return ChangeLengthPrefix(random);
        }
    }

    /// <summary>Rewrites the varint length of one length-delimited field (a sub-message, string, bytes or packed array).</summary>
    private (byte[], string) ChangeLengthPrefix(Random random)
    {
        var (offset, size, length) = _lengthPrefixes[random.Next(_lengthPrefixes.Count)];
        long[] candidates = [0, length - 1, length + 1, length * 2L, length / 2, int.MaxValue, uint.MaxValue, 1L << 40];
        long newLength = candidates[random.Next(candidates.Length)];
        byte[] varint = EncodeVarint(newLength);
        byte[] bytes = new byte[_original.Length - size + varint.Length];
        _original.AsSpan(0, offset).CopyTo(bytes);
        varint.CopyTo(bytes, offset);
        _original.AsSpan(offset + size).CopyTo(bytes.AsSpan(offset + varint.Length));
        return (bytes, $"length prefix at {offset} changed from {length} to {newLength}");
    }

    private string MutateStructure(ModelProto model, Random random)
    {
        GraphProto graph = model.Graph;
        var nodes = graph.Node;
        NodeProto? node = nodes.Count > 0 ? nodes[random.Next(nodes.Count)] : null;
        long hostile = HostileInts[random.Next(HostileInts.Length)];
        switch (random.Next(17))
        {
            case 0 when node is not null && node.Attribute.Count > 0:
            {
                var attribute = node.Attribute[random.Next(node.Attribute.Count)];
                if (attribute.Ints.Count > 0) attribute.Ints[random.Next(attribute.Ints.Count)] = hostile;
                else attribute.I = hostile;
                return $"attribute {attribute.Name} of {node.OpType} '{node.Name}' set to {hostile}";
            }
            case 1 when node is not null:
            {
                string[] names = ["group", "strides", "pads", "kernel_shape", "dilations", "axis", "perm", "transB"];
                string name = names[random.Next(names.Length)];
                var attribute = node.Attribute.FirstOrDefault(a => a.Name == name);
                if (attribute is null) node.Attribute.Add(attribute = new AttributeProto { Name = name });
                int rank = random.Next(0, 5);
                attribute.Ints.Clear();
                if (random.Next(2) == 0)
                {
                    attribute.Type = AttributeProto.Types.AttributeType.Int;
                    attribute.I = hostile;
                }
                else
                {
                    attribute.Type = AttributeProto.Types.AttributeType.Ints;
                    for (int i = 0; i < rank; i++) attribute.Ints.Add(random.Next(2) == 0 ? hostile : random.Next(-2, 5));
                }
                return $"attribute {name} of {node.OpType} '{node.Name}' set to {attribute.I} / [{string.Join(",", attribute.Ints)}]";
            }
            case 2 when graph.Initializer.Count > 0:
            {
                var tensor = RandomInitializer(graph, random);
                if (tensor.Dims.Count == 0) tensor.Dims.Add(1);
                tensor.Dims[random.Next(tensor.Dims.Count)] = random.Next(2) == 0 ? 1L << 40 : hostile;
                return $"initializer '{tensor.Name}' declares dims [{string.Join(",", tensor.Dims)}]";
            }
            case 3 when graph.Initializer.Count > 0:
            {
                var tensor = RandomInitializer(graph, random);
                switch (random.Next(3))
                {
                    case 0 when tensor.Dims.Count > 0: tensor.Dims[random.Next(tensor.Dims.Count)] += random.Next(2) * 2 - 1; break;
                    case 1: tensor.Dims.Add(random.Next(1, 4)); break;
                    default: if (tensor.Dims.Count > 0) tensor.Dims.RemoveAt(random.Next(tensor.Dims.Count)); break;
                }
                return $"initializer '{tensor.Name}' dims changed to [{string.Join(",", tensor.Dims)}]";
            }
            case 4:
            {
                var value = random.Next(2) == 0 ? graph.Input.FirstOrDefault() : graph.Output.FirstOrDefault();
                var dims = value?.Type?.TensorType?.Shape?.Dim;
                if (dims is null || dims.Count == 0) return "no shaped graph value to change";
                var dim = dims[random.Next(dims.Count)];
                if (random.Next(4) == 0) dim.DimParam = "unknown";
                else dim.DimValue = hostile;
                return $"graph value '{value!.Name}' dims changed to [{string.Join(",", dims.Select(d => d.HasDimValue ? d.DimValue.ToString() : d.DimParam))}]";
            }
            case 5 when node is not null && node.Input.Count > 0:
            {
                // A cycle: an input now reads this node's own output or a later node's.
                int index = nodes.IndexOf(node);
                var later = nodes[random.Next(index, nodes.Count)];
                node.Input[random.Next(node.Input.Count)] = later.Output[0];
                return $"cycle: '{node.Name}' reads '{later.Output[0]}'";
            }
            case 6 when graph.Initializer.Count > 0:
            {
                var tensor = RandomInitializer(graph, random);
                graph.Initializer.Remove(tensor);
                return $"initializer '{tensor.Name}' removed";
            }
            case 7 when node is not null && node.Input.Count > 0:
            {
                int input = random.Next(node.Input.Count);
                node.Input[input] = "dangling_value";
                return $"input {input} of '{node.Name}' dangles";
            }
            case 8 when node is not null:
            {
                var other = nodes[random.Next(nodes.Count)];
                node.Output[0] = random.Next(3) == 0 ? graph.Input[0].Name : other.Output[0];
                if (random.Next(2) == 0) graph.Output.Add(graph.Output[0].Clone());
                return $"'{node.Name}' output renamed to '{node.Output[0]}', {graph.Output.Count} graph output(s)";
            }
            case 9 when graph.Initializer.Count > 0:
            {
                var tensor = RandomInitializer(graph, random);
                tensor.DataType = DataTypes[random.Next(DataTypes.Length)];
                return $"initializer '{tensor.Name}' data type {tensor.DataType}";
            }
            case 10:
            {
                var elementType = graph.Input.FirstOrDefault()?.Type?.TensorType;
                if (elementType is null) return "no typed input";
                elementType.ElemType = DataTypes[random.Next(DataTypes.Length)];
                return $"graph input element type {elementType.ElemType}";
            }
            case 11 when node is not null:
                nodes.Remove(node);
                return $"node '{node.Name}' ({node.OpType}) removed";
            case 12 when node is not null:
            {
                var other = nodes[random.Next(nodes.Count)];
                int a = nodes.IndexOf(node), b = nodes.IndexOf(other);
                (nodes[a], nodes[b]) = (other, node);
                nodes.Insert(random.Next(nodes.Count + 1), node.Clone());
                return $"nodes {a} and {b} swapped, '{node.Name}' duplicated";
            }
            case 13 when node is not null:
                node.OpType = OpTypes[random.Next(OpTypes.Length)];
                return $"node '{node.Name}' op type changed to '{node.OpType}'";
            case 14:
            {
                long[] opsets = [0, -1, 6, 7, 11, 21, 22, 1000];
                model.OpsetImport[0].Version = opsets[random.Next(opsets.Length)];
                if (random.Next(3) == 0) model.IrVersion = random.Next(-1, 3);
                return $"opset {model.OpsetImport[0].Version}, IR {model.IrVersion}";
            }
            case 15 when graph.Initializer.Count > 0:
            {
                var tensor = RandomInitializer(graph, random);
                ByteString raw = tensor.RawData;
                tensor.RawData = ByteString.CopyFrom(raw.Span[..random.Next(raw.Length + 1)]);
                if (random.Next(3) == 0) tensor.FloatData.Add(1f);
                return $"initializer '{tensor.Name}' raw_data cut to {tensor.RawData.Length} of {raw.Length} bytes";
            }
            default:
            {
                if (node is null || node.Attribute.Count == 0) return "no attribute to retype";
                var attribute = node.Attribute[random.Next(node.Attribute.Count)];
                attribute.Type = (AttributeProto.Types.AttributeType)random.Next(0, 13);
                if (random.Next(2) == 0) attribute.Ints.Clear();
                return $"attribute {attribute.Name} of '{node.Name}' retyped {attribute.Type}";
            }
        }
    }

    private static TensorProto RandomInitializer(GraphProto graph, Random random) => graph.Initializer[random.Next(graph.Initializer.Count)];

    /// <summary>Records every length-delimited field that also parses as a nested message, so nested lengths get mutated too.</summary>
    private bool FindLengthPrefixes(byte[] bytes, int start, int end, int depth)
    {
        int position = start;
        var found = new List<(int, int, int)>();
        while (position < end)
        {
            if (!TryReadVarint(bytes, ref position, end, out ulong tag) || tag >> 3 == 0) return false;
            switch ((int)(tag & 7))
            {
                case 0: if (!TryReadVarint(bytes, ref position, end, out _)) return false; break;
                case 1: position += 8; break;
                case 5: position += 4; break;
                case 2:
                {
                    int prefix = position;
                    if (!TryReadVarint(bytes, ref position, end, out ulong length) || length > (ulong)(end - position)) return false;
                    found.Add((prefix, position - prefix, (int)length));
                    // Large payloads are weight bytes, not messages; recursing into them would only find noise.
                    if (depth < 6 && length < 4096) FindLengthPrefixes(bytes, position, position + (int)length, depth + 1);
                    position += (int)length;
                    break;
                }
                default: return false;
            }
        }
        if (position != end) return false;
        _lengthPrefixes.AddRange(found);
        return true;
    }

    private static bool TryReadVarint(byte[] bytes, ref int position, int end, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && position < end; shift += 7)
        {
            byte b = bytes[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    private static byte[] EncodeVarint(long value)
    {
        var bytes = new List<byte>();
        ulong v = (ulong)value;
        do
        {
            byte b = (byte)(v & 0x7F);
            v >>= 7;
            bytes.Add(v != 0 ? (byte)(b | 0x80) : b);
        } while (v != 0);
        return bytes.ToArray();
    }
}
