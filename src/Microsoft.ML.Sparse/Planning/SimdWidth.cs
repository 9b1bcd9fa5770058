namespace Microsoft.ML.Sparse;

/// <summary>The widest vector instructions the kernels may use. <see cref="Auto"/> takes the widest the CPU accelerates.</summary>
public enum SimdWidth
{
    /// <summary>The widest width the machine accelerates (Vector512 on AVX-512, Vector256 on AVX2+FMA, Vector128 on SSE/NEON).</summary>
    Auto = 0,
    /// <summary>Plain scalar code.</summary>
    Scalar = 1,
    /// <summary>128-bit vectors (SSE, Arm NEON).</summary>
    Vector128 = 128,
    /// <summary>256-bit vectors (AVX2 with FMA).</summary>
    Vector256 = 256,
    /// <summary>512-bit vectors (AVX-512F).</summary>
    Vector512 = 512,
}
