namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// A constant tensor known at load time: an initializer, a Constant node's value or a folded result.
/// Floating-point types are held as float, integer and boolean types as long.
/// </summary>
internal sealed class OnnxTensor
{
    private OnnxTensor(long[] dims, float[]? floats, long[]? longs)
    {
        Dims = dims;
        Floats = floats;
        Longs = longs;
    }

    public long[] Dims { get; }

    public float[]? Floats { get; }

    public long[]? Longs { get; }

    public bool IsFloat => Floats is not null;

    public int Length => IsFloat ? Floats!.Length : Longs!.Length;

    public int Rank => Dims.Length;

    public static OnnxTensor FromFloats(long[] dims, float[] values) => new(dims, values, null);

    public static OnnxTensor FromLongs(long[] dims, long[] values) => new(dims, null, values);

    public static OnnxTensor Scalar(long value) => FromLongs([], [value]);

    /// <summary>The values as floats (integers converted).</summary>
    public float[] AsFloats() => Floats ?? Array.ConvertAll(Longs!, v => (float)v);

    /// <summary>The values as longs (floats truncated toward zero, as ONNX Cast does).</summary>
    public long[] AsLongs() => Longs ?? Array.ConvertAll(Floats!, v => (long)v);

    /// <summary>The same values under another shape of equal element count.</summary>
    public OnnxTensor WithDims(long[] dims) => new(dims, Floats, Longs);

    /// <summary>
    /// Largest tensor the importer materialises without bytes in the file backing every element (a densified sparse
    /// initializer, a broadcast result): 2^28 floats, 1 GiB, far above any MobileNet layer.
    /// </summary>
    public const long MaxSynthesizedElements = 1L << 28;

    /// <summary>Element count of a shape, or -1 when a dimension is negative or the count exceeds an array's capacity.</summary>
    public static long ElementCount(IReadOnlyList<long> dims)
    {
        long count = 1;
        foreach (long dim in dims)
        {
            if (dim < 0) return -1;
            if (dim != 0 && count > Array.MaxLength / dim) return -1;
            count *= dim;
        }
        return count;
    }

    /// <summary>True when every element equals <paramref name="value"/>.</summary>
    public bool AllEqual(float value) => Array.TrueForAll(AsFloats(), v => v == value);

    public override string ToString() => $"{(IsFloat ? "float" : "int")}[{string.Join(",", Dims)}]";
}
