using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// Evaluates nodes whose inputs are all known at load time: Constant values, the shape arithmetic exporters emit for a
/// flatten (Shape/Gather/Unsqueeze/Concat/Reshape/Squeeze), weight preprocessing such as torch pruning's
/// <c>Mul(weight_orig, weight_mask)</c>, Cast and a constant Transpose.
/// </summary>
internal static class ConstantFolder
{
    private static readonly HashSet<string> Foldable =
    [
        "Constant", "Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Flatten",
        "Transpose", "Add", "Sub", "Mul", "Div", "Neg", "Sqrt",
    ];

    public static bool CanFold(string opType) => Foldable.Contains(opType);

    /// <summary>Computes the node's single output from constant inputs (null entries are absent optional inputs).</summary>
    public static OnnxTensor Fold(NodeProto node, IReadOnlyList<OnnxTensor?> inputs, OnnxModelFile file)
    {
        var attributes = new NodeAttributes(node, file);
        OnnxTensor Input(int i) => i < inputs.Count && inputs[i] is { } t ? t
            : throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}) lacks its input {i}.");
        switch (node.OpType)
        {
            case "Constant": return ConstantValue(node, attributes, file);
            case "Identity": return Input(0);
            case "Cast": return CastTo(Input(0), attributes.Int("to", 1), node, file);
            case "Shape": return ShapeTensor(Input(0).Dims, attributes);
            case "Gather": return Gather(Input(0), Input(1), (int)attributes.Int("axis", 0), node, file);
            case "Unsqueeze": return Input(0).WithDims(Unsqueeze(Input(0).Dims, Axes(node, inputs, attributes, file) ?? [], node, file));
            case "Squeeze": return Input(0).WithDims(Squeeze(Input(0).Dims, Axes(node, inputs, attributes, file), node, file));
            case "Concat": return Concat(inputs.Select((t, i) => Input(i)).ToArray(), (int)attributes.Int("axis", 0), node, file);
            case "Reshape": return Input(0).WithDims(ReshapeTarget(Input(0).Dims, Input(1).AsLongs(), attributes.Int("allowzero", 0) != 0, node, file));
            case "Flatten": return Input(0).WithDims(Flatten(Input(0).Dims, (int)attributes.Int("axis", 1), node, file));
            case "Transpose": return Transpose(Input(0), attributes.Ints("perm"), node, file);
            case "Neg": return Map(Input(0), v => -v, v => -v);
            case "Sqrt": return OnnxTensor.FromFloats(Input(0).Dims, Array.ConvertAll(Input(0).AsFloats(), MathF.Sqrt));
            default: return Binary(node, Input(0), Input(1), file);
        }
    }

    /// <summary>Axes from the attribute (before opset 13) or the optional second input (opset 13 on).</summary>
    public static long[]? Axes(NodeProto node, IReadOnlyList<OnnxTensor?> inputs, NodeAttributes attributes, OnnxModelFile file)
    {
        if (attributes.Has("axes")) return attributes.Ints("axes");
        return inputs.Count > 1 && inputs[1] is { } axes ? axes.AsLongs() : null;
    }

    public static long[] ShapeOf(long[] dims, NodeAttributes attributes)
    {
        int rank = dims.Length;
        int start = ClampAxis(attributes.Int("start", 0), rank);
        int end = ClampAxis(attributes.Int("end", rank), rank);
        return end > start ? dims[start..end] : [];

        static int ClampAxis(long axis, int rank) => (int)Math.Clamp(axis < 0 ? axis + rank : axis, 0, rank);
    }

    public static OnnxTensor ShapeTensor(long[] dims, NodeAttributes attributes)
    {
        long[] shape = ShapeOf(dims, attributes);
        return OnnxTensor.FromLongs([shape.Length], shape);
    }

    public static int NormalizeAxis(long axis, int rank, NodeProto node, OnnxModelFile file)
    {
        long normalized = axis < 0 ? axis + rank : axis;
        if (normalized < 0 || normalized >= rank)
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}): axis {axis} is out of range for rank {rank}.");
        return (int)normalized;
    }

    public static long[] Unsqueeze(long[] dims, long[] axes, NodeProto node, OnnxModelFile file)
    {
        int rank = dims.Length + axes.Length;
        var normalized = axes.Select(a => NormalizeAxis(a, rank, node, file)).ToHashSet();
        var result = new long[rank];
        for (int axis = 0, source = 0; axis < rank; axis++)
            result[axis] = normalized.Contains(axis) ? 1 : dims[source++];
        return result;
    }

    public static long[] Squeeze(long[] dims, long[]? axes, NodeProto node, OnnxModelFile file)
    {
        var squeezed = axes is null
            ? Enumerable.Range(0, dims.Length).Where(a => dims[a] == 1).ToHashSet()
            : axes.Select(a => NormalizeAxis(a, dims.Length, node, file)).ToHashSet();
        if (squeezed.Any(a => dims[a] != 1))
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Squeeze) squeezes an axis whose size is not 1 in [{string.Join(",", dims)}].");
        return dims.Where((_, a) => !squeezed.Contains(a)).ToArray();
    }

    public static long[] Flatten(long[] dims, int axis, NodeProto node, OnnxModelFile file)
    {
        int split = axis < 0 ? axis + dims.Length : axis;
        if (split < 0 || split > dims.Length)
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Flatten): axis {axis} is out of range for rank {dims.Length}.");
        return [dims[..split].Aggregate(1L, (a, b) => a * b), dims[split..].Aggregate(1L, (a, b) => a * b)];
    }

    /// <summary>Resolves a Reshape target's 0 (copy, unless allowzero) and -1 (infer) entries.</summary>
    public static long[] ReshapeTarget(long[] dims, long[] target, bool allowZero, NodeProto node, OnnxModelFile file)
    {
        long total = OnnxTensor.ElementCount(dims);
        var result = new long[target.Length];
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long dim = target[i] == 0 && !allowZero && i < dims.Length ? dims[i] : target[i];
            if (dim == -1 && inferred < 0) { inferred = i; continue; }
            if (dim < 0) throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Reshape): invalid target shape [{string.Join(",", target)}].");
            result[i] = dim;
            known *= dim;
        }
        if (inferred >= 0)
        {
            if (known == 0 || total % known != 0)
                throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Reshape): cannot reshape [{string.Join(",", dims)}] to [{string.Join(",", target)}].");
            result[inferred] = total / known;
        }
        else if (known != total)
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Reshape): cannot reshape [{string.Join(",", dims)}] to [{string.Join(",", target)}].");
        return result;
    }

    private static OnnxTensor ConstantValue(NodeProto node, NodeAttributes attributes, OnnxModelFile file)
    {
        var attribute = node.Attribute.FirstOrDefault()
            ?? throw file.Invalid($"Constant node '{OnnxModelFile.NodeName(node)}' has no value attribute.");
        return attribute.Name switch
        {
            "value" => file.ReadTensor(attribute.T),
            "sparse_value" => file.ReadSparseTensor(attribute.SparseTensor),
            "value_float" => OnnxTensor.FromFloats([], [attribute.F]),
            "value_floats" => OnnxTensor.FromFloats([attribute.Floats.Count], attribute.Floats.ToArray()),
            "value_int" => OnnxTensor.Scalar(attribute.I),
            "value_ints" => OnnxTensor.FromLongs([attribute.Ints.Count], attribute.Ints.ToArray()),
            _ => throw file.Unsupported(node, $"Constant attribute '{attribute.Name}' is not supported; supported: value, sparse_value, value_float(s), value_int(s)."),
        };
    }

    private static OnnxTensor CastTo(OnnxTensor input, long to, NodeProto node, OnnxModelFile file) => (TensorProto.Types.DataType)to switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Float16
            => OnnxTensor.FromFloats(input.Dims, input.AsFloats()),
        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32
            => OnnxTensor.FromLongs(input.Dims, input.AsLongs()),
        var type => throw file.Unsupported(node, $"Cast to {type} is not supported at load time; supported: float, double, float16, int32, int64."),
    };

    private static OnnxTensor Gather(OnnxTensor data, OnnxTensor indices, int axis, NodeProto node, OnnxModelFile file)
    {
        int rank = data.Rank;
        axis = NormalizeAxis(axis, rank, node, file);
        long outer = data.Dims[..axis].Aggregate(1L, (a, b) => a * b);
        long inner = data.Dims[(axis + 1)..].Aggregate(1L, (a, b) => a * b);
        long size = data.Dims[axis];
        long[] index = indices.AsLongs();
        long[] dims = [.. data.Dims[..axis], .. indices.Dims, .. data.Dims[(axis + 1)..]];
        var positions = new List<long>();
        for (long o = 0; o < outer; o++)
            foreach (long i in index)
            {
                long k = i < 0 ? i + size : i;
                if (k < 0 || k >= size) throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Gather): index {i} out of range {size}.");
                for (long j = 0; j < inner; j++) positions.Add((o * size + k) * inner + j);
            }
        return data.IsFloat
            ? OnnxTensor.FromFloats(dims, positions.Select(p => data.Floats![p]).ToArray())
            : OnnxTensor.FromLongs(dims, positions.Select(p => data.Longs![p]).ToArray());
    }

    private static OnnxTensor Concat(OnnxTensor[] parts, int axis, NodeProto node, OnnxModelFile file)
    {
        int rank = parts[0].Rank;
        axis = NormalizeAxis(axis, rank, node, file);
        if (parts.Any(p => p.Rank != rank || p.IsFloat != parts[0].IsFloat
                || Enumerable.Range(0, rank).Any(a => a != axis && p.Dims[a] != parts[0].Dims[a])))
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Concat): inputs {string.Join(", ", parts.Select(p => p.ToString()))} do not concatenate on axis {axis}.");
        long outer = parts[0].Dims[..axis].Aggregate(1L, (a, b) => a * b);
        long[] dims = (long[])parts[0].Dims.Clone();
        dims[axis] = parts.Sum(p => p.Dims[axis]);
        var floats = new List<float>();
        var longs = new List<long>();
        for (long o = 0; o < outer; o++)
            foreach (var part in parts)
            {
                int chunk = (int)(part.Length / Math.Max(outer, 1));
                if (part.IsFloat) floats.AddRange(part.Floats!.AsSpan((int)(o * chunk), chunk));
                else longs.AddRange(part.Longs!.AsSpan((int)(o * chunk), chunk));
            }
        return parts[0].IsFloat ? OnnxTensor.FromFloats(dims, floats.ToArray()) : OnnxTensor.FromLongs(dims, longs.ToArray());
    }

    private static OnnxTensor Transpose(OnnxTensor input, long[]? perm, NodeProto node, OnnxModelFile file)
    {
        int rank = input.Rank;
        perm ??= Enumerable.Range(0, rank).Reverse().Select(a => (long)a).ToArray();
        if (perm.Length != rank || perm.Distinct().Count() != rank || perm.Any(a => a < 0 || a >= rank))
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Transpose): perm [{string.Join(",", perm)}] does not fit rank {rank}.");
        long[] dims = perm.Select(a => input.Dims[a]).ToArray();
        long[] sourceStrides = Strides(input.Dims);
        var positions = new long[input.Length];
        var coordinate = new long[rank];
        for (long i = 0; i < positions.Length; i++)
        {
            long source = 0;
            for (int a = 0; a < rank; a++) source += coordinate[a] * sourceStrides[perm[a]];
            positions[i] = source;
            for (int a = rank - 1; a >= 0 && ++coordinate[a] == dims[a]; a--) coordinate[a] = 0;
        }
        return input.IsFloat
            ? OnnxTensor.FromFloats(dims, positions.Select(p => input.Floats![p]).ToArray())
            : OnnxTensor.FromLongs(dims, positions.Select(p => input.Longs![p]).ToArray());
    }

    private static long[] Strides(long[] dims)
    {
        var strides = new long[dims.Length];
        long stride = 1;
        for (int a = dims.Length - 1; a >= 0; a--) { strides[a] = stride; stride *= dims[a]; }
        return strides;
    }

    private static OnnxTensor Map(OnnxTensor input, Func<float, float> onFloat, Func<long, long> onLong) => input.IsFloat
        ? OnnxTensor.FromFloats(input.Dims, Array.ConvertAll(input.Floats!, v => onFloat(v)))
        : OnnxTensor.FromLongs(input.Dims, Array.ConvertAll(input.Longs!, v => onLong(v)));

    /// <summary>Elementwise Add/Sub/Mul/Div with numpy broadcasting.</summary>
    private static OnnxTensor Binary(NodeProto node, OnnxTensor a, OnnxTensor b, OnnxModelFile file)
    {
        long[] dims = BroadcastShape(a.Dims, b.Dims)
            ?? throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}): shapes {a} and {b} do not broadcast.");
        long count = OnnxTensor.ElementCount(dims);
        if (count < 0 || count > OnnxTensor.MaxSynthesizedElements)
            throw file.Unsupported(node, $"broadcasting {a} with {b} gives [{string.Join(",", dims)}], too large to fold at load time.");
        long[] aIndex = BroadcastIndices(a.Dims, dims), bIndex = BroadcastIndices(b.Dims, dims);
        if (a.IsFloat || b.IsFloat)
        {
            float[] x = a.AsFloats(), y = b.AsFloats();
            Func<float, float, float> op = node.OpType switch
            {
                "Add" => (p, q) => p + q, "Sub" => (p, q) => p - q, "Mul" => (p, q) => p * q, _ => (p, q) => p / q,
            };
            var result = new float[count];
            for (long i = 0; i < count; i++) result[i] = op(x[aIndex[i]], y[bIndex[i]]);
            return OnnxTensor.FromFloats(dims, result);
        }
        else
        {
            long[] x = a.Longs!, y = b.Longs!;
            Func<long, long, long> op = node.OpType switch
            {
                "Add" => (p, q) => p + q, "Sub" => (p, q) => p - q, "Mul" => (p, q) => p * q,
                _ => (p, q) => q == 0 ? throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' (Div) divides an integer by zero.") : p / q,
            };
            var result = new long[count];
            for (long i = 0; i < count; i++) result[i] = op(x[aIndex[i]], y[bIndex[i]]);
            return OnnxTensor.FromLongs(dims, result);
        }
    }

    /// <summary>The numpy broadcast of two shapes, or null when they are incompatible.</summary>
    public static long[]? BroadcastShape(long[] a, long[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var dims = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            long x = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            long y = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (x != y && x != 1 && y != 1) return null;
            dims[i] = x == 1 ? y : x;
        }
        return dims;
    }

    /// <summary>For every element of the broadcast shape, the index of the source element it reads.</summary>
    private static long[] BroadcastIndices(long[] source, long[] target)
    {
        long[] padded = [.. Enumerable.Repeat(1L, target.Length - source.Length), .. source];
        long[] strides = Strides(padded);
        long count = OnnxTensor.ElementCount(target);
        var indices = new long[count];
        var coordinate = new long[target.Length];
        for (long i = 0; i < count; i++)
        {
            long index = 0;
            for (int a = 0; a < target.Length; a++) if (padded[a] != 1) index += coordinate[a] * strides[a];
            indices[i] = index;
            for (int a = target.Length - 1; a >= 0 && ++coordinate[a] == target[a]; a--) coordinate[a] = 0;
        }
        return indices;
    }
}
