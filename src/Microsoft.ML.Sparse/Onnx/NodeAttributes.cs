using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx;

/// <summary>Typed access to a node's attributes with ONNX defaults.</summary>
internal sealed class NodeAttributes(NodeProto node, OnnxModelFile file)
{
    private AttributeProto? Find(string name) => node.Attribute.FirstOrDefault(a => a.Name == name);

    public bool Has(string name) => Find(name) is not null;

    public long Int(string name, long defaultValue) => Find(name) is { } a ? a.I : defaultValue;

    public float Float(string name, float defaultValue) => Find(name) is { } a ? a.F : defaultValue;

    public string String(string name, string defaultValue) => Find(name) is { } a ? a.S.ToStringUtf8() : defaultValue;

    public long[]? Ints(string name) => Find(name)?.Ints.ToArray();

    /// <summary>An ints attribute that must have <paramref name="count"/> entries when present.</summary>
    public long[] Ints(string name, int count, long defaultValue)
    {
        long[]? values = Ints(name);
        if (values is null) return Enumerable.Repeat(defaultValue, count).ToArray();
        if (values.Length != count)
            throw file.Invalid($"node '{OnnxModelFile.NodeName(node)}' ({node.OpType}): attribute '{name}' has {values.Length} values, expected {count}.");
        return values;
    }
}
