namespace Microsoft.ML.Sparse;

/// <summary>How a <see cref="SparseNetwork"/> is planned and run.</summary>
public sealed class SparseNetworkOptions
{
    /// <summary>
    /// Threads one inference uses (pixel tiles, then channels, are split across them). Default: all cores. 1 runs on the
    /// caller's thread only. Results are the same bits on every run with a given count; different counts agree within
    /// rounding (with several threads, inverted-residual projections sum their input channels in one piece per thread).
    /// </summary>
    public int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// Minimum fraction of zero weights at which a 1x1 convolution or fully connected layer takes the sparse (SpMM) path;
    /// below it the dense path runs. The default was measured with the kernel benchmarks (see docs/design.md).
    /// </summary>
    public float SparseThreshold { get; set; } = DefaultSparseThreshold;

    /// <summary>The widest SIMD width the kernels may use; narrower widths are for tests and comparisons.</summary>
    public SimdWidth MaxSimdWidth { get; set; } = SimdWidth.Auto;

    /// <summary>
    /// Whether a 1x1 layer and the depthwise layer it alone feeds (and, with several threads, the 1x1 projection after them)
    /// may run as one layer; off for comparisons. The pairs give the same bits either way; the split projections give the
    /// same bits for a given thread count.
    /// </summary>
    internal bool FuseLayers { get; set; } = true;

    /// <summary>
    /// The measured sparsity above which SpMM beats the dense 1x1 path on this engine: PointwiseBenchmarks (single thread,
    /// AVX-512, random magnitude pruning) put the crossover at 0.45-0.5 for the shallow MobileNet shapes (32->192, 64->128
    /// at 112x112, 96->576 at 14x14) and 0.6-0.65 for the deep ones (512->512 at 14x14, 1024->1024 at 7x7); the default
    /// takes the upper end, so a layer goes sparse only where SpMM wins on every measured shape.
    /// </summary>
    public const float DefaultSparseThreshold = 0.65f;
}
