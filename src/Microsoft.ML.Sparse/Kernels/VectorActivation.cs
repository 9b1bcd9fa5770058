using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// The activation functions as straight-line vector code that kernels inline into their epilogues (through the
/// <see cref="IActivationFunction"/> structs), next to the accumulators: no call (every vector register is caller-saved,
/// so a call to <c>Vector512.Exp</c> forced a kernel to spill its accumulators and run the activation as a second pass),
/// no table, no branch.
/// </summary>
/// <remarks>
/// Sigmoid and Swish share <see cref="OnePlusExpNegated{TVec}"/>: e^-x by range reduction in one step (x = -(n ln2 + r),
/// |r| &lt;= ln2 / 2, n rounded by adding 1.5 x 2^23; ln2 rounded to float puts n x 1.9e-9 into r, at most 2.3e-7
/// relative wherever |y| &gt;= 1e-36), a degree-5 polynomial for e^-r with the constant term 1 (Lawson-iterated to minimax
/// relative error: 9.2e-8 in exact arithmetic), and the exact scaling by 2^n (vscalefps on AVX-512). Then
/// sigmoid = 1 / (1 + e^-x) and swish = x / (1 + e^-x), one correctly rounded division each. Every instruction counts:
/// the epilogue of a few-input SpMM (EfficientNet's expansions) is bound by its FMA ports, and this form has five fewer
/// than a two-step reduction with a degree-6 polynomial, or than a reciprocal estimate with a Newton step in place of
/// the division (both measured slower, PointwiseEpilogueBenchmarks). Error against the double-precision function,
/// asserted over the whole float range at every width by ActivationFunctionTests: sigmoid within
/// <see cref="SigmoidAbsoluteError"/> absolute and <see cref="RelativeError"/> relative, swish within
/// <see cref="RelativeError"/> relative wherever |y| &gt;= 1e-36 (below that, within 1e-36 absolute). x is clamped to
/// +-<see cref="ReductionBound"/> before the reduction only: there e^-x is already 0 or infinite in float, so sigmoid
/// gives exactly 0 and 1 and swish 0 (x &gt; 0), NaN for -inf (-inf / inf, as x * sigmoid(x) = -inf * 0 in the scalar
/// definition and in ONNX Runtime), and NaN in gives NaN out.
/// </remarks>
internal static class VectorActivation
{
    /// <summary>Asserted bound of |sigmoid - exact| (a float near 1 is 6e-8 apart from the next).</summary>
    public const double SigmoidAbsoluteError = 2e-7;

    /// <summary>Asserted relative bound of sigmoid and swish where the result is not tiny.</summary>
    public const double RelativeError = 1e-6;

    /// <summary>|x| beyond which e^-x is 0 or infinite in float anyway (2^144): the reduction stays free of NaN.</summary>
    private const float ReductionBound = 100f;

    private const float Log2E = 1.44269504f, Ln2 = 0.6931472f;
    /// <summary>Adding 1.5 x 2^23 rounds any |v| &lt; 2^22 to an integer (the float's last bit is worth 1 there).</summary>
    private const float RoundingBias = 12582912f;

    // e^-r ~ 1 + C1 r + ... + C5 r^5 on |r| <= ln2 / 2.
    private const float C1 = -0.9999997f, C2 = 0.49999148f, C3 = -0.16667636f, C4 = 0.041898038f, C5 = -0.008290357f;

    /// <summary>1 + e^-x, exactly 1 or +inf past |x| = 100, NaN for NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec OnePlusExpNegated<TVec>(TVec x) where TVec : struct, IFloatVector<TVec>
    {
        TVec z = Clamp(x, TVec.Broadcast(-ReductionBound), TVec.Broadcast(ReductionBound));
        TVec n = TVec.MultiplyAdd(z, TVec.Broadcast(-Log2E), TVec.Broadcast(RoundingBias)) - TVec.Broadcast(RoundingBias);
        // r = z + n ln2, so -z = n ln2 - r and e^-z = 2^n e^-r.
        TVec r = TVec.MultiplyAdd(n, TVec.Broadcast(Ln2), z);
        TVec p = TVec.MultiplyAdd(TVec.Broadcast(C5), r, TVec.Broadcast(C4));
        p = TVec.MultiplyAdd(p, r, TVec.Broadcast(C3));
        p = TVec.MultiplyAdd(p, r, TVec.Broadcast(C2));
        p = TVec.MultiplyAdd(p, r, TVec.Broadcast(C1));
        p = TVec.MultiplyAdd(p, r, TVec.Broadcast(1f));
        return TVec.ScaleByPowerOfTwo(p, n) + TVec.Broadcast(1f);
    }

    /// <summary>
    /// The same on Vector512 directly: one inlinee per use instead of some thirty wrapper calls, so a kernel can inline it
    /// once per accumulator within the JIT's inlining budget.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> OnePlusExpNegated(Vector512<float> x)
    {
        Vector512<float> z = Vector512.MinNative(Vector512.Create(ReductionBound), Vector512.MaxNative(Vector512.Create(-ReductionBound), x));
        Vector512<float> n = Vector512.FusedMultiplyAdd(z, Vector512.Create(-Log2E), Vector512.Create(RoundingBias)) - Vector512.Create(RoundingBias);
        Vector512<float> r = Vector512.FusedMultiplyAdd(n, Vector512.Create(Ln2), z);
        Vector512<float> p = Vector512.FusedMultiplyAdd(Vector512.Create(C5), r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f));
        return Avx512F.Scale(p, n) + Vector512.Create(1f);
    }

    /// <summary>1 / (1 + e^-x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Sigmoid<TVec>(TVec x) where TVec : struct, IFloatVector<TVec>
    {
        if (typeof(TVec) == typeof(Float512))
            return Unsafe.BitCast<Vector512<float>, TVec>(Vector512.Create(1f) / OnePlusExpNegated(Unsafe.BitCast<TVec, Vector512<float>>(x)));
        return TVec.Broadcast(1f) / OnePlusExpNegated(x);
    }

    /// <summary>x / (1 + e^-x), i.e. x * sigmoid(x) (SiLU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Swish<TVec>(TVec x) where TVec : struct, IFloatVector<TVec>
    {
        if (typeof(TVec) == typeof(Float512))
        {
            Vector512<float> v = Unsafe.BitCast<TVec, Vector512<float>>(x);
            return Unsafe.BitCast<Vector512<float>, TVec>(v / OnePlusExpNegated(v));
        }
        return x / OnePlusExpNegated(x);
    }

    /// <summary>clamp(alpha x + beta, 0, 1), NaN propagating.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec HardSigmoid<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> =>
        Clamp(TVec.MultiplyAdd(x, TVec.Broadcast(alpha), TVec.Broadcast(beta)), TVec.Zero, TVec.Broadcast(1f));

    /// <summary>x * clamp(x / 6 + 1 / 2, 0, 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec HardSwish<TVec>(TVec x) where TVec : struct, IFloatVector<TVec> => x * HardSigmoid(x, 1f / 6f, 0.5f);

    /// <summary>
    /// max(x, lo) as one vmaxps: the IEEE Max of <see cref="IFloatVector{TSelf}"/> costs three more instructions to order -0
    /// and NaN, which shows in epilogues of short rows and small blocks. The bound goes first so a NaN in
    /// <paramref name="value"/> still propagates (x86 returns the second operand on NaN); -0 may stay -0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec AtLeast<TVec>(TVec value, TVec min) where TVec : struct, IFloatVector<TVec>
    {
        if (typeof(TVec) == typeof(Float512))
            return Unsafe.BitCast<Vector512<float>, TVec>(Vector512.MaxNative(Unsafe.BitCast<TVec, Vector512<float>>(min), Unsafe.BitCast<TVec, Vector512<float>>(value)));
        if (typeof(TVec) == typeof(Float256))
            return Unsafe.BitCast<Vector256<float>, TVec>(Vector256.MaxNative(Unsafe.BitCast<TVec, Vector256<float>>(min), Unsafe.BitCast<TVec, Vector256<float>>(value)));
        return TVec.Max(value, min);
    }

    /// <summary>min(max(x, lo), hi) with one vmaxps and one vminps, NaN propagating as in <see cref="AtLeast{TVec}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Clamp<TVec>(TVec value, TVec min, TVec max) where TVec : struct, IFloatVector<TVec>
    {
        TVec low = AtLeast(value, min);
        if (typeof(TVec) == typeof(Float512))
            return Unsafe.BitCast<Vector512<float>, TVec>(Vector512.MinNative(Unsafe.BitCast<TVec, Vector512<float>>(max), Unsafe.BitCast<TVec, Vector512<float>>(low)));
        if (typeof(TVec) == typeof(Float256))
            return Unsafe.BitCast<Vector256<float>, TVec>(Vector256.MinNative(Unsafe.BitCast<TVec, Vector256<float>>(max), Unsafe.BitCast<TVec, Vector256<float>>(low)));
        return TVec.Min(low, max);
    }
}
