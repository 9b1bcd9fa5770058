namespace Microsoft.ML.Sparse;

/// <summary>
/// Calibration data for <see cref="PruningMethod.Reconstruction"/>: a few unlabelled images like the ones the model
/// will see (8-32 are enough for MobileNets), and how to turn them into the model's input. Give an
/// <see cref="ImageFolder"/>, <see cref="ImagePaths"/> or already preprocessed <see cref="Inputs"/>.
/// </summary>
/// <remarks>
/// Each image is decoded (ML.NET's <c>MLImage</c>: BMP, JPEG, PNG, ...), its central square (<see cref="CentralCrop"/>
/// of the shorter side) resized to the model's input size with area averaging, and every channel value mapped to
/// (pixel - offset) * scale, as ML.NET's <c>ExtractPixels</c> does. The default is the TF MobileNet scaling x / 127.5 - 1
/// in RGB; for torchvision models use offsets 255 * mean and scales 1 / (255 * std) per channel.
/// Images are streamed: the pruner keeps at most <see cref="MaxCachedInputBytes"/> of preprocessed inputs and decodes
/// the rest again for each layer.
/// </remarks>
public sealed class CalibrationOptions
{
    /// <summary>A folder of images (.bmp, .jpg, .jpeg, .png, .gif, .webp); the first <see cref="MaxImages"/> by ordinal file name are used.</summary>
    public string? ImageFolder { get; set; }

    /// <summary>Image files, used in the given order (up to <see cref="MaxImages"/>).</summary>
    public IReadOnlyList<string>? ImagePaths { get; set; }

    /// <summary>Already preprocessed model inputs (each one image in the model's input layout and size), instead of
    /// images. Called once per calibration pass; it must yield the same tensors each time.</summary>
    public Func<IEnumerable<float[]>>? Inputs { get; set; }

    /// <summary>Images used at most. Default 16.</summary>
    public int MaxImages { get; set; } = 16;

    /// <summary>Also calibrates on each image mirrored left to right (twice the samples for the same images). Default true.</summary>
    public bool Mirror { get; set; } = true;

    /// <summary>Also calibrates on four corner crops of each image (squares of 80% of the central square, resized to the
    /// input size): five times the views for the same images. Default true.</summary>
    public bool CornerCrops { get; set; } = true;

    /// <summary>Fraction of the shorter side kept by the central square crop before resizing, in (0, 1]. Default 1 (the
    /// largest centred square, as ML.NET's IsoCrop resize).</summary>
    public float CentralCrop { get; set; } = 1f;

    /// <summary>Subtracted from each 0-255 channel value: one value for all channels or one per channel (R, G, B). Default 127.5.</summary>
    public IReadOnlyList<float> Offsets { get; set; } = [127.5f];

    /// <summary>Multiplies each channel value after the offset: one value or one per channel. Default 1 / 127.5.</summary>
    public IReadOnlyList<float> Scales { get; set; } = [1f / 127.5f];

    /// <summary>Channels in B, G, R order instead of R, G, B (Caffe-style models). Default false.</summary>
    public bool Bgr { get; set; }

    /// <summary>Dampening added to the diagonal of each layer's X X^T, as a fraction of its mean diagonal: a ridge that
    /// keeps the weight updates from fitting the few calibration images too closely. Default 0.1.</summary>
    public float Dampening { get; set; } = 0.1f;

    /// <summary>After pruning a layer, adds to its bias the mean shift of its output against the dense model's (when
    /// the layer has a constant bias). Default true.</summary>
    public bool BiasCorrection { get; set; } = true;

    /// <summary>With <see cref="BiasCorrection"/>, also scales each output channel of a pruned layer so that its variance
    /// over the calibration samples is the dense model's (batch-norm re-estimation on the folded weights). Default true.</summary>
    public bool VarianceCorrection { get; set; } = true;

    /// <summary>Columns (input channels) whose weights are selected and updated together before the lazy update of the
    /// rest. Default 128.</summary>
    public int ColumnBlock { get; set; } = 128;

    /// <summary>Preprocessed inputs kept in memory between calibration passes; beyond this the images are decoded again
    /// for every pass. Default 64 MB (about 100 images at 224 x 224).</summary>
    public long MaxCachedInputBytes { get; set; } = 64L << 20;

    internal void Validate()
    {
        int sources = (ImageFolder is null ? 0 : 1) + (ImagePaths is null ? 0 : 1) + (Inputs is null ? 0 : 1);
        if (sources != 1)
            throw new ArgumentException($"CalibrationOptions needs exactly one of ImageFolder, ImagePaths or Inputs; {sources} given.");
        if (ImageFolder is not null && !Directory.Exists(ImageFolder))
            throw new DirectoryNotFoundException($"Calibration image folder '{ImageFolder}' not found.");
        if (MaxImages < 1) throw new ArgumentOutOfRangeException(nameof(MaxImages), MaxImages, "MaxImages must be at least 1.");
        if (!(CentralCrop is > 0f and <= 1f)) throw new ArgumentOutOfRangeException(nameof(CentralCrop), CentralCrop, "CentralCrop must be in (0, 1].");
        if (Offsets is null || Offsets.Count is not (1 or 3) || Offsets.Any(v => !float.IsFinite(v)))
            throw new ArgumentException("Offsets must hold 1 or 3 finite values.", nameof(Offsets));
        if (Scales is null || Scales.Count is not (1 or 3) || Scales.Any(v => !float.IsFinite(v)))
            throw new ArgumentException("Scales must hold 1 or 3 finite values.", nameof(Scales));
        if (!(Dampening is > 0f and <= 1f)) throw new ArgumentOutOfRangeException(nameof(Dampening), Dampening, "Dampening must be in (0, 1].");
        if (ColumnBlock < 1) throw new ArgumentOutOfRangeException(nameof(ColumnBlock), ColumnBlock, "ColumnBlock must be at least 1.");
        if (MaxCachedInputBytes < 0) throw new ArgumentOutOfRangeException(nameof(MaxCachedInputBytes), MaxCachedInputBytes, "MaxCachedInputBytes must not be negative.");
    }
}

/// <summary>Where a <see cref="PruningMethod.Reconstruction"/> run is: reported once per layer step.</summary>
/// <param name="Step">What is happening: "dense pass", "calibration pass" or "pruned".</param>
/// <param name="Layer">Index of the layer among the calibrated layers (0-based).</param>
/// <param name="Layers">Number of calibrated layers.</param>
/// <param name="LayerName">The layer's node name.</param>
public readonly record struct PruningProgress(string Step, int Layer, int Layers, string LayerName);
