using System.Buffers.Binary;
using System.Text;
using ScoringService;

namespace Microsoft.ML.Sparse.Tests.Service;

/// <summary>Hostile request bodies for /classify, each with the status and message the service must answer with.</summary>
internal static class HostileInputs
{
    public sealed record Case(string Name, byte[] Body, string? ContentType, int Status, string MessagePart);

    public static readonly IReadOnlyDictionary<string, Case> All = Build().ToDictionary(c => c.Name);

    private static IEnumerable<Case> Build()
    {
        byte[] jpeg = GeneratedImage.Jpeg(160, 120, seed: 11);
        byte[] png = GeneratedImage.Png(160, 120, seed: 12);
        yield return new("empty body", [], "image/jpeg", 400, "empty");
        yield return new("truncated JPEG (first half)", jpeg[..(jpeg.Length / 2)], "image/jpeg", 400, "truncated");
        yield return new("truncated JPEG (header only)", jpeg[..200], "image/jpeg", 400, "truncated");
        yield return new("truncated PNG (first half)", png[..(png.Length / 2)], "image/png", 400, "truncated");
        yield return new("PNG with a corrupt IDAT", CorruptPngData(png), "image/png", 400, "could not be decoded");
        yield return new("JPEG with a corrupt frame header", CorruptJpegHeader(jpeg), "image/jpeg", 400, "not a readable");
        yield return new("random bytes", RandomBytes(5000, seed: 13), "image/jpeg", 400, "not a readable");
        yield return new("PNG declaring 100000 x 100000", PngDeclaring(100_000, 100_000), "image/png", 422, "100000 x 100000");
        yield return new("PNG declaring 4097 x 1", PngDeclaring(4097, 1), "image/png", 422, "4097 x 1");
        yield return new("JPEG declaring 65500 x 65500", JpegDeclaring(jpeg, 65500, 65500), "image/jpeg", 422, "65500 x 65500");
        yield return new("text/plain content type", png, "text/plain", 415, "not an image");
        yield return new("no content type", png, null, 415, "(none)");
        yield return new("JSON content type", Encoding.UTF8.GetBytes("{\"image\":\"...\"}"), "application/json", 415, "not an image");
    }

    /// <summary>A valid PNG header whose IHDR declares <paramref name="width"/> x <paramref name="height"/>, then a few bytes of IDAT and IEND.</summary>
    public static byte[] PngDeclaring(int width, int height)
    {
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // RGB
        WriteChunk(png, "IHDR", ihdr);
        WriteChunk(png, "IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]);
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary><paramref name="jpeg"/> with its SOF0 frame header rewritten to declare <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static byte[] JpegDeclaring(byte[] jpeg, int width, int height)
    {
        byte[] copy = (byte[])jpeg.Clone();
        int sof = FindMarker(copy, 0xC0);
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(sof + 5), (ushort)height);
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(sof + 7), (ushort)width);
        return copy;
    }

    /// <summary>The frame header's component count set to 0 and its precision to 3 bits: no decoder accepts it.</summary>
    private static byte[] CorruptJpegHeader(byte[] jpeg)
    {
        byte[] copy = (byte[])jpeg.Clone();
        int sof = FindMarker(copy, 0xC0);
        copy[sof + 4] = 3;
        copy[sof + 9] = 0;
        return copy;
    }

    /// <summary>The compressed pixel data overwritten with random bytes (its CRC left as it was).</summary>
    private static byte[] CorruptPngData(byte[] png)
    {
        byte[] copy = (byte[])png.Clone();
        int idat = Encoding.ASCII.GetString(copy).IndexOf("IDAT", StringComparison.Ordinal);
        int length = BinaryPrimitives.ReadInt32BigEndian(copy.AsSpan(idat - 4));
        RandomBytes(Math.Min(length, 64), seed: 14).CopyTo(copy, idat + 4);
        return copy;
    }

    private static int FindMarker(byte[] jpeg, byte marker)
    {
        for (int i = 2; i + 1 < jpeg.Length; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] == marker) return i;
        throw new InvalidOperationException($"No marker FF{marker:X2} in the JPEG.");
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static void WriteChunk(Stream png, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        byte[] typeAndData = [.. Encoding.ASCII.GetBytes(type), .. data];
        png.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeAndData));
        png.Write(word);
    }

    /// <summary>PNG's CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), bit by bit: chunks here are a few bytes.</summary>
    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
