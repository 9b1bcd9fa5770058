using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx.Schema;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// A float32 initializer, dense or COO sparse, read as a dense array and written back in the encoding it came in
/// (raw_data or float_data; linear or coordinate indices), so a pruned file differs from its source only in values.
/// </summary>
internal sealed class StoredWeight
{
    private readonly TensorProto? _dense;
    private readonly SparseTensorProto? _sparse;

    private StoredWeight(TensorProto? dense, SparseTensorProto? sparse)
    {
        _dense = dense;
        _sparse = sparse;
    }

    public static StoredWeight Dense(TensorProto tensor) => new(tensor, null);

    public static StoredWeight Sparse(SparseTensorProto tensor) => new(null, tensor);

    public string Name => _dense?.Name ?? _sparse!.Values.Name;

    public long[] Dims => (_dense?.Dims ?? _sparse!.Dims).ToArray();

    /// <summary>Why the weight cannot be rewritten, or null when it can.</summary>
    public string? UnsupportedReason
    {
        get
        {
            var values = _dense ?? _sparse!.Values;
            if (values is null) return "a sparse initializer without values";
            if (values.DataType != (int)TensorProto.Types.DataType.Float)
                return $"data type {(TensorProto.Types.DataType)values.DataType} (only float32 weights are pruned)";
            if (values.DataLocation == TensorProto.Types.DataLocation.External || _sparse?.Indices?.DataLocation == TensorProto.Types.DataLocation.External)
                return "external data (only weights stored inside the .onnx file are pruned)";
            return null;
        }
    }

    public float[] Read(OnnxModelFile file) => (_dense is not null ? file.ReadTensor(_dense) : file.ReadSparseTensor(_sparse!)).Floats!;

    /// <summary>Stores <paramref name="values"/> (the full dense tensor) in the tensor's original encoding.</summary>
    public void Write(float[] values)
    {
        if (_dense is not null)
        {
            SetFloats(_dense, values);
            return;
        }

        // A sparse initializer keeps only the nonzeros: rewrite values and indices, keeping the index layout.
        var indices = _sparse!.Indices;
        bool coordinates = indices.Dims.Count == 2;
        long[] dims = Dims;
        var kept = new List<float>();
        var keptIndices = new List<long>();
        for (long position = 0; position < values.Length; position++)
        {
            if (values[position] == 0f) continue;
            kept.Add(values[position]);
            if (coordinates) AppendCoordinates(keptIndices, position, dims);
            else keptIndices.Add(position);
        }

        var valueTensor = _sparse.Values;
        valueTensor.Dims.Clear();
        valueTensor.Dims.Add(kept.Count);
        SetFloats(valueTensor, CollectionsMarshal.AsSpan(kept));

        indices.Dims.Clear();
        indices.Dims.Add(kept.Count);
        if (coordinates) indices.Dims.Add(dims.Length);
        if (indices.HasRawData)
        {
            indices.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(keptIndices)));
        }
        else
        {
            indices.Int64Data.Clear();
            indices.Int64Data.AddRange(keptIndices);
        }
    }

    private static void SetFloats(TensorProto tensor, ReadOnlySpan<float> values)
    {
        if (tensor.HasRawData)
        {
            // ONNX raw_data is little-endian, as is every platform .NET runs this library on.
            tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
            return;
        }
        tensor.FloatData.Clear();
        tensor.FloatData.AddRange(values.ToArray());
    }

    private static void AppendCoordinates(List<long> indices, long position, long[] dims)
    {
        int start = indices.Count;
        for (int axis = dims.Length - 1; axis >= 0; axis--)
        {
            indices.Add(position % dims[axis]);
            position /= dims[axis];
        }
        indices.Reverse(start, dims.Length);
    }
}
