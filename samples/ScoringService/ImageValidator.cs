using SkiaSharp;

namespace ScoringService;

/// <summary>Why a body was refused: the HTTP status and a message for the client.</summary>
public sealed record Rejection(int StatusCode, string Message);

/// <summary>
/// Checks an uploaded image before trusting it: a recognised format, dimensions read from the header (so a decode bomb
/// declaring 100000 x 100000 pixels is refused before any pixel memory is allocated), and a complete decode (truncated
/// and corrupt data are refused instead of scoring a half-grey image).
/// </summary>
internal sealed class ImageValidator(ScoringServiceOptions options)
{
    /// <summary>Content types accepted; the format itself is sniffed from the bytes.</summary>
    public static readonly string[] AcceptedContentTypes = ["image/jpeg", "image/png", "image/bmp", "image/gif", "image/webp", "application/octet-stream"];

    /// <summary>415 unless the content type is one of <see cref="AcceptedContentTypes"/> (parameters ignored).</summary>
    public static Rejection? CheckContentType(string? contentType)
    {
        string? mediaType = contentType?.Split(';', 2)[0].Trim();
        if (mediaType is not null && AcceptedContentTypes.Contains(mediaType, StringComparer.OrdinalIgnoreCase)) return null;
        return new Rejection(StatusCodes.Status415UnsupportedMediaType,
            $"Content-Type '{contentType ?? "(none)"}' is not an image; send the image bytes as one of {string.Join(", ", AcceptedContentTypes)}.");
    }

    /// <summary>Decodes <paramref name="body"/> into RGBA pixels, or says why not (400 or 422).</summary>
    public (SKBitmap? Bitmap, Rejection? Rejection) Decode(ReadOnlyMemory<byte> body)
    {
        if (body.IsEmpty) return (null, new Rejection(StatusCodes.Status400BadRequest, "The request body is empty; send the image bytes."));
        using var data = SKData.CreateCopy(body.Span);
        // The codec takes ownership of the stream (and disposes it with itself).
        using var codec = SKCodec.Create(new SKMemoryStream(data), out var created);
        if (codec is null)
            return (null, new Rejection(StatusCodes.Status400BadRequest, $"The body is not a readable JPEG, PNG, BMP, GIF or WebP image ({Describe(created)})."));
        var info = codec.Info;
        if (info.Width <= 0 || info.Height <= 0 || info.Width > options.MaxImageSide || info.Height > options.MaxImageSide
            || (long)info.Width * info.Height > options.MaxImagePixels)
            return (null, new Rejection(StatusCodes.Status422UnprocessableEntity,
                $"The {codec.EncodedFormat} image declares {info.Width} x {info.Height} pixels; the limit is {options.MaxImageSide} per side and {options.MaxImagePixels:N0} in all."));

        // Premultiplied BGRA, as SKBitmap.Decode (hence MLImage.CreateFromStream) gives on little-endian machines.
        var bitmap = new SKBitmap(new SKImageInfo(info.Width, info.Height, SKColorType.Bgra8888, SKAlphaType.Premul));
        var result = codec.GetPixels(bitmap.Info, bitmap.GetPixels());
        if (result == SKCodecResult.Success) return (bitmap, null);
        bitmap.Dispose();
        return (null, new Rejection(StatusCodes.Status400BadRequest, $"The {codec.EncodedFormat} image ({info.Width} x {info.Height}) could not be decoded: {Describe(result)}."));
    }

    private static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput => "the data is truncated",
        SKCodecResult.ErrorInInput => "the data is corrupt",
        SKCodecResult.Unimplemented => "no decoder recognises the format or its variant",
        SKCodecResult.InvalidInput or SKCodecResult.CouldNotRewind => "an unrecognised or damaged header",
        _ => $"the decoder said {result}",
    };
}
