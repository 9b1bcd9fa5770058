using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx.Synthetic;

/// <summary>
/// Appends nodes, initializers and value infos to an ONNX graph with generated unique names, so that model generators
/// (and tests building odd graphs by hand) stay short.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly Dictionary<string, int> _nameCounts = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(string graphName, int opset)
    {
        Opset = opset;
        Graph = new GraphProto { Name = graphName };
    }

    public GraphProto Graph { get; }

    public int Opset { get; }

    /// <summary>A name not used before: <paramref name="stem"/>, then stem_1, stem_2...</summary>
    public string UniqueName(string stem)
    {
        int count = _nameCounts.GetValueOrDefault(stem);
        _nameCounts[stem] = count + 1;
        return count == 0 ? stem : $"{stem}_{count}";
    }

    /// <summary>Adds a node and returns its first output's name.</summary>
    public string Node(string opType, string[] inputs, string? name = null, params AttributeProto[] attributes) =>
        NodeWithOutputs(opType, inputs, 1, name, attributes)[0];

    public string[] NodeWithOutputs(string opType, string[] inputs, int outputCount, string? name, params AttributeProto[] attributes)
    {
        string nodeName = UniqueName(name ?? opType);
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.AddRange(inputs);
        var outputs = new string[outputCount];
        for (int i = 0; i < outputCount; i++) outputs[i] = outputCount == 1 ? nodeName + "_out" : $"{nodeName}_out{i}";
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return outputs;
    }

    /// <summary>Adds a float initializer stored as little-endian raw_data (what exporters write).</summary>
    public string FloatInitializer(string stem, long[] dims, ReadOnlySpan<float> values)
    {
        string name = UniqueName(stem);
        Graph.Initializer.Add(FloatTensor(name, dims, values));
        return name;
    }

    /// <summary>Adds a float weight as a COO sparse_initializer with linear int64 indices (ONNX IR 6+).</summary>
    public string SparseFloatInitializer(string stem, long[] dims, ReadOnlySpan<float> values)
    {
        string name = UniqueName(stem);
        var nonzeroValues = new List<float>();
        var linearIndices = new List<long>();
        for (int i = 0; i < values.Length; i++)
        {
            if (values[i] == 0f) continue;
            nonzeroValues.Add(values[i]);
            linearIndices.Add(i);
        }
        var indices = new TensorProto { Name = name + "_indices", DataType = (int)TensorProto.Types.DataType.Int64 };
        indices.Dims.Add(linearIndices.Count);
        indices.Int64Data.AddRange(linearIndices);
        var sparse = new SparseTensorProto
        {
            Values = FloatTensor(name, [nonzeroValues.Count], CollectionsMarshal.AsSpan(nonzeroValues)),
            Indices = indices,
        };
        sparse.Dims.AddRange(dims);
        Graph.SparseInitializer.Add(sparse);
        return name;
    }

    public string Int64Initializer(string stem, long[] dims, params long[] values)
    {
        string name = UniqueName(stem);
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.AddRange(dims);
        tensor.Int64Data.AddRange(values);
        Graph.Initializer.Add(tensor);
        return name;
    }

    public void Input(string name, int elementType, params object[] dims) => Graph.Input.Add(ValueInfo(name, elementType, dims));

    public void Output(string name, int elementType, params object[] dims) => Graph.Output.Add(ValueInfo(name, elementType, dims));

    /// <summary>Wraps the graph into a model importing the default domain at <see cref="Opset"/>.</summary>
    public ModelProto ToModel(long irVersion, string producer)
    {
        var model = new ModelProto { IrVersion = irVersion, ProducerName = producer, Graph = Graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    public static TensorProto FloatTensor(string name, long[] dims, ReadOnlySpan<float> values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
        return tensor;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A tensor value info; each dimension is an int (fixed) or a string (symbolic, e.g. "N").</summary>
    private static ValueInfoProto ValueInfo(string name, int elementType, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (object dim in dims)
        {
            shape.Dim.Add(dim switch
            {
                int value => new TensorShapeProto.Types.Dimension { DimValue = value },
                string symbol => new TensorShapeProto.Types.Dimension { DimParam = symbol },
                _ => throw new ArgumentException($"Dimension '{dim}' must be an int or a string."),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } },
        };
    }
}
