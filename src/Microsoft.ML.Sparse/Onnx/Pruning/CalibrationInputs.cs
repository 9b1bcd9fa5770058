using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// The calibration inputs of one pruning run, enumerated once per pass: decoded and preprocessed images (or the
/// caller's tensors), of which the first ones that fit in <see cref="CalibrationOptions.MaxCachedInputBytes"/> are kept
/// between passes and the rest decoded again, so memory stays bounded whatever the number of images.
/// </summary>
internal sealed class CalibrationInputs
{
    private static readonly string[] s_imageExtensions = [".bmp", ".jpg", ".jpeg", ".png", ".gif", ".webp"];

    private readonly CalibrationOptions _options;
    private readonly ImageGeometry _geometry;
    private readonly List<float[]> _cache = [];
    private readonly string[] _paths;
    private bool _cacheComplete;
    private int _count;

    public CalibrationInputs(CalibrationOptions options, ImageGeometry geometry)
    {
        _options = options;
        _geometry = geometry;
        _paths = options.ImagePaths?.Take(options.MaxImages).ToArray()
            ?? (options.ImageFolder is { } folder
                ? Directory.EnumerateFiles(folder).Where(IsImage).Order(StringComparer.Ordinal).Take(options.MaxImages).ToArray()
                : []);
        if (options.Inputs is null && _paths.Length == 0)
            throw new ArgumentException($"No calibration images (.bmp/.jpg/.png/...) in '{options.ImageFolder}'.");
    }

    public ImageGeometry Geometry => _geometry;

    /// <summary>Every input once: the cached ones, then the rest decoded (and cached while the budget allows).</summary>
    public IEnumerable<float[]> Enumerate(CancellationToken cancellationToken)
    {
        long cachedBytes = _cache.Sum(input => (long)input.Length * sizeof(float));
        int index = 0;
        foreach (float[] input in Source())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (input.Length != _geometry.Length)
                throw new ArgumentException($"Calibration input {index} holds {input.Length} floats; the model's input is {_geometry.Length} ({_geometry}).");
            if (!_cacheComplete && index >= _cache.Count && cachedBytes + (long)input.Length * sizeof(float) <= _options.MaxCachedInputBytes)
            {
                _cache.Add(input);
                cachedBytes += (long)input.Length * sizeof(float);
            }
            index++;
            yield return input;
        }
        if (index == 0) throw new ArgumentException("The calibration inputs are empty.");
        _cacheComplete = true;
        _count = index;
    }

    private IEnumerable<float[]> Source()
    {
        if (!_cacheComplete) return Uncached(skip: 0);
        // Later passes: the cached inputs, then the rest decoded again (the caller's source is not asked again when
        // everything fits).
        return _cache.Count == _count ? _cache : _cache.Concat(Uncached(skip: _cache.Count));
    }

    private IEnumerable<float[]> Uncached(int skip)
    {
        if (_options.Inputs is { } inputs)
        {
            foreach (float[] input in inputs().Take(_options.MaxImages).Skip(skip)) yield return input;
            yield break;
        }
        int mirrors = _options.Mirror ? 2 : 1, views = mirrors * (_options.CornerCrops ? 5 : 1);
        for (int view = skip; view < _paths.Length * views; view++) yield return Preprocess(_paths[view / views], view % views / mirrors, mirror: view % mirrors == 1);
    }

    /// <summary>View 0 is the central square; views 1-4 the squares of 80% of it at its four corners.</summary>
    private float[] Preprocess(string path, int crop, bool mirror)
    {
        MLImage image;
        try
        {
            image = MLImage.CreateFromFile(path);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            throw new ArgumentException($"Calibration image '{path}' could not be decoded: {e.Message}", e);
        }
        using (image)
        {
            float side = Math.Min(image.Width, image.Height) * _options.CentralCrop;
            float left = (image.Width - side) / 2, top = (image.Height - side) / 2;
            if (crop == 0) return _geometry.Crop(image, left, top, side, mirror, _options);
            float corner = side * 0.8f;
            int k = crop - 1;
            return _geometry.Crop(image, left + k % 2 * (side - corner), top + k / 2 * (side - corner), corner, mirror, _options);
        }
    }

    private static bool IsImage(string path) => s_imageExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());
}

/// <summary>The model's image input: channels, height, width and whether it is laid out HWC; crops an image to it.</summary>
internal readonly record struct ImageGeometry(int Channels, int Height, int Width, bool Hwc)
{
    public int Length => Channels * Height * Width;

    /// <summary>From the engine's input shape ([3, H, W], or [H, W, 3] for NHWC models).</summary>
    public static ImageGeometry Of(IReadOnlyList<int> shape, bool hwc)
    {
        var geometry = hwc ? new ImageGeometry(shape[2], shape[0], shape[1], true) : new ImageGeometry(shape[0], shape[1], shape[2], false);
        if (geometry.Channels != 3)
            throw new NotSupportedException($"Calibration images feed RGB inputs; the model's input is [{string.Join(",", shape)}].");
        return geometry;
    }

    public override string ToString() => Hwc ? $"[{Height},{Width},{Channels}]" : $"[{Channels},{Height},{Width}]";

    /// <summary>
    /// The square (<paramref name="left"/>, <paramref name="top"/>, <paramref name="side"/>) of <paramref name="image"/>
    /// resized to Height x Width by averaging the source pixels under each output pixel (bilinear when enlarging), then
    /// (pixel - offset) * scale per channel.
    /// </summary>
    public float[] Crop(MLImage image, float left, float top, float side, bool mirror, CalibrationOptions preprocessing)
    {
        ReadOnlySpan<byte> pixels = image.Pixels;
        bool bgra = image.PixelFormat == MLPixelFormat.Bgra32;
        var tensor = new float[Length];
        float stepX = side / Width, stepY = side / Height;
        // Samples per output pixel along each axis: enough to cover the source pixels it spans (area averaging).
        int samplesX = Math.Max(1, (int)Math.Ceiling(stepX)), samplesY = Math.Max(1, (int)Math.Ceiling(stepY));
        Span<float> sum = stackalloc float[3];
        for (int y = 0; y < Height; y++)
        {
            for (int x = 0; x < Width; x++)
            {
                int column = mirror ? Width - 1 - x : x;
                sum.Clear();
                for (int sy = 0; sy < samplesY; sy++)
                {
                    float sourceY = Math.Clamp(top + (y + (sy + 0.5f) / samplesY) * stepY - 0.5f, 0, image.Height - 1);
                    for (int sx = 0; sx < samplesX; sx++)
                    {
                        float sourceX = Math.Clamp(left + (column + (sx + 0.5f) / samplesX) * stepX - 0.5f, 0, image.Width - 1);
                        for (int c = 0; c < 3; c++) sum[c] += Bilinear(pixels, image.Width, image.Height, sourceX, sourceY, bgra ? 2 - c : c);
                    }
                }
                for (int c = 0; c < 3; c++)
                {
                    int channel = preprocessing.Bgr ? 2 - c : c;
                    float offset = preprocessing.Offsets[preprocessing.Offsets.Count == 3 ? c : 0];
                    float scale = preprocessing.Scales[preprocessing.Scales.Count == 3 ? c : 0];
                    float value = (sum[c] / (samplesX * samplesY) - offset) * scale;
                    tensor[Hwc ? (y * Width + x) * 3 + channel : (channel * Height + y) * Width + x] = value;
                }
            }
        }
        return tensor;
    }

    private static float Bilinear(ReadOnlySpan<byte> pixels, int width, int height, float x, float y, int byteOffset)
    {
        int x0 = (int)x, y0 = (int)y, x1 = Math.Min(x0 + 1, width - 1), y1 = Math.Min(y0 + 1, height - 1);
        float fx = x - x0, fy = y - y0;
        float Pixel(ReadOnlySpan<byte> p, int px, int py) => p[(py * width + px) * 4 + byteOffset];
        float upper = Pixel(pixels, x0, y0) + (Pixel(pixels, x1, y0) - Pixel(pixels, x0, y0)) * fx;
        float lower = Pixel(pixels, x0, y1) + (Pixel(pixels, x1, y1) - Pixel(pixels, x0, y1)) * fx;
        return upper + (lower - upper) * fy;
    }
}
