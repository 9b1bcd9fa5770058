using SkiaSharp;

namespace ScoringService;

/// <summary>Pictures made in code (gradients and discs, different per seed) for runs without ../shared, and for tests.</summary>
public static class GeneratedImage
{
    public static byte[] Png(int width, int height, int seed) => Encode(width, height, seed, SKEncodedImageFormat.Png);

    public static byte[] Jpeg(int width, int height, int seed) => Encode(width, height, seed, SKEncodedImageFormat.Jpeg);

    private static byte[] Encode(int width, int height, int seed, SKEncodedImageFormat format)
    {
        var random = new Random(seed);
        SKColor RandomColor() => new((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var background = new SKPaint
            {
                Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(width, height), [RandomColor(), RandomColor()], SKShaderTileMode.Clamp),
            };
            canvas.DrawRect(0, 0, width, height, background);
            for (int i = 0; i < 6; i++)
            {
                using var disc = new SKPaint { Color = RandomColor(), IsAntialias = true };
                canvas.DrawCircle(random.Next(width), random.Next(height), random.Next(4, Math.Max(5, Math.Min(width, height) / 3)), disc);
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(format, 90);
        return encoded.ToArray();
    }
}
