using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Vector forms of <see cref="Activation.Apply"/>, for fused epilogues.</summary>
internal static class VectorActivation
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        switch (activation.Kind)
        {
            case ActivationKind.None: return x;
            case ActivationKind.Relu: return AtLeast(x, TVec.Zero);
            case ActivationKind.Clip: return Clamp(x, TVec.Broadcast(activation.Alpha), TVec.Broadcast(activation.Beta));
            case ActivationKind.HardSigmoid: return HardSigmoid(x, activation.Alpha, activation.Beta);
            case ActivationKind.HardSwish: return x * HardSigmoid(x, 1f / 6f, 0.5f);
            case ActivationKind.Sigmoid: return TVec.Broadcast(1f) / (TVec.Broadcast(1f) + TVec.Exp(TVec.Zero - x));
            case ActivationKind.Swish: return x / (TVec.Broadcast(1f) + TVec.Exp(TVec.Zero - x));
            default: throw new InvalidOperationException($"Unknown activation {activation.Kind}.");
        }
    }

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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec HardSigmoid<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> =>
        TVec.Max(TVec.Zero, TVec.Min(TVec.Broadcast(1f), TVec.MultiplyAdd(x, TVec.Broadcast(alpha), TVec.Broadcast(beta))));

    /// <summary>Applies the activation in place over <paramref name="count"/> floats, vector body then scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void ApplyInPlace<TVec>(float* data, int count, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        if (activation.Kind == ActivationKind.None) return;
        int i = 0;
        for (; i <= count - TVec.Count; i += TVec.Count) Apply(TVec.Load(data + i), activation).Store(data + i);
        for (; i < count; i++) data[i] = activation.Apply(data[i]);
    }
}
