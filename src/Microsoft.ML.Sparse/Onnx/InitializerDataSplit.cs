namespace Microsoft.ML.Sparse.Onnx;

/// <summary>
/// Splits the initializers' <c>raw_data</c> out of a serialized ModelProto before protobuf parses it. Protobuf copies
/// every bytes field it parses, so a model's weights would be copied once into the parsed tensors and once more when
/// decoded to floats, each time into fresh pages (on the development machine a page fault costs more than the copy).
/// The engine instead parses a copy of the model without those fields (the graph, nodes and small tensors: kilobytes)
/// and decodes each initializer's floats straight from the file's bytes: one copy of the weights, the one it keeps.
/// </summary>
/// <remarks>
/// Only what the wire format says is read: ModelProto field 7 (graph), GraphProto field 5 (initializer), TensorProto
/// field 9 (raw_data); every other field is copied as it is. Anything unexpected (groups, a length past the end, a
/// malformed varint) returns null, and the caller parses the original bytes, so protobuf's own error reaches the user.
/// </remarks>
internal static class InitializerDataSplit
{
    private const int ModelGraph = 7, GraphInitializer = 5, TensorRawData = 9;
    private const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    /// <summary>
    /// The model without its initializers' raw_data, and where each initializer's raw_data lies in <paramref name="model"/>
    /// (in the order the initializers appear, which is the parsed graph's order; null for one without raw_data).
    /// </summary>
    public static (byte[] Model, List<Range?> RawData)? Split(ReadOnlySpan<byte> model)
    {
        var output = new Writer(Math.Min(model.Length, 1 << 16));
        var rawData = new List<Range?>();
        int position = 0;
        while (position < model.Length)
        {
            int fieldStart = position;
            if (!ReadField(model, ref position, out int field, out int wire, out int start, out int length)) return null;
            if (field == ModelGraph && wire == WireLengthDelimited)
            {
                byte[]? graph = SplitGraph(model, start, length, rawData);
                if (graph is null) return null;
                output.LengthDelimited(field, graph);
            }
            else output.Raw(model[fieldStart..position]);
        }
        return (output.ToArray(), rawData);
    }

    private static byte[]? SplitGraph(ReadOnlySpan<byte> model, int offset, int length, List<Range?> rawData)
    {
        var output = new Writer(Math.Min(length, 1 << 16));
        int position = offset, end = offset + length;
        while (position < end)
        {
            int fieldStart = position;
            if (!ReadField(model[..end], ref position, out int field, out int wire, out int start, out int fieldLength)) return null;
            if (field == GraphInitializer && wire == WireLengthDelimited)
            {
                // The tensor without raw_data: every other field as it is, the last raw_data's place remembered (protobuf keeps the last).
                var tensor = new Writer(256);
                Range? raw = null;
                int at = start, tensorEnd = start + fieldLength;
                while (at < tensorEnd)
                {
                    int tensorFieldStart = at;
                    if (!ReadField(model[..tensorEnd], ref at, out int tensorField, out int tensorWire, out int dataStart, out int dataLength)) return null;
                    if (tensorField == TensorRawData && tensorWire == WireLengthDelimited) raw = dataStart..(dataStart + dataLength);
                    else tensor.Raw(model[tensorFieldStart..at]);
                }
                rawData.Add(raw);
                output.LengthDelimited(field, tensor.ToArray());
            }
            else output.Raw(model[fieldStart..position]);
        }
        return output.ToArray();
    }

    /// <summary>
    /// Reads one field at <paramref name="position"/>: its number and wire type, and for a length-delimited field where its
    /// payload starts and how long it is. Advances past the field.
    /// </summary>
    private static bool ReadField(ReadOnlySpan<byte> data, ref int position, out int field, out int wire, out int start, out int length)
    {
        start = position;
        length = 0;
        field = wire = 0;
        if (!ReadVarint(data, ref position, out ulong tag) || tag >> 3 is 0 or > int.MaxValue) return false;
        field = (int)(tag >> 3);
        wire = (int)(tag & 7);
        switch (wire)
        {
            case WireVarint:
                return ReadVarint(data, ref position, out _);
            case WireFixed64:
                position += 8;
                return position <= data.Length;
            case WireFixed32:
                position += 4;
                return position <= data.Length;
            case WireLengthDelimited:
                if (!ReadVarint(data, ref position, out ulong size) || size > (ulong)(data.Length - position)) return false;
                start = position;
                length = (int)size;
                position += length;
                return true;
            default:
                return false; // groups (deprecated) or an invalid wire type: let protobuf decide
        }
    }

    private static bool ReadVarint(ReadOnlySpan<byte> data, ref int position, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (position >= data.Length) return false;
            byte b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    /// <summary>A growing byte buffer that writes protobuf fields.</summary>
    private sealed class Writer(int capacity)
    {
        private byte[] _buffer = new byte[Math.Max(capacity, 16)];
        private int _length;

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            Reserve(bytes.Length);
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
        }

        public void LengthDelimited(int field, ReadOnlySpan<byte> payload)
        {
            Varint(((ulong)field << 3) | WireLengthDelimited);
            Varint((ulong)payload.Length);
            Raw(payload);
        }

        public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

        private void Varint(ulong value)
        {
            Reserve(10);
            while (value >= 0x80)
            {
                _buffer[_length++] = (byte)(value | 0x80);
                value >>= 7;
            }
            _buffer[_length++] = (byte)value;
        }

        private void Reserve(int bytes)
        {
            if (_length + bytes <= _buffer.Length) return;
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + bytes));
        }
    }
}
