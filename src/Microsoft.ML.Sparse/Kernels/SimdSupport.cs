using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Which SIMD widths this process can run fast, and the width a request resolves to.</summary>
internal static class SimdSupport
{
    /// <summary>The widest width the hardware accelerates (FMA is required for 256-bit on x86).</summary>
    public static SimdWidth Widest { get; } =
        Vector512.IsHardwareAccelerated ? SimdWidth.Vector512 :
        Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported ? SimdWidth.Vector256 :
        Vector128.IsHardwareAccelerated ? SimdWidth.Vector128 : SimdWidth.Scalar;

    /// <summary>Every width this machine can run, narrowest first; tests iterate over it.</summary>
    public static IReadOnlyList<SimdWidth> Available { get; } =
        new[] { SimdWidth.Scalar, SimdWidth.Vector128, SimdWidth.Vector256, SimdWidth.Vector512 }.Where(w => w <= Widest).ToArray();

    /// <summary>Resolves <see cref="SimdWidth.Auto"/> and caps a request at what the hardware accelerates.</summary>
    public static SimdWidth Resolve(SimdWidth requested) =>
        requested == SimdWidth.Auto || requested > Widest ? Widest : requested;
}
