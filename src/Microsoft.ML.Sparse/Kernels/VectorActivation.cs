using System.Runtime.CompilerServices;

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
            case ActivationKind.Relu: return TVec.Max(x, TVec.Zero);
            case ActivationKind.Clip: return TVec.Min(TVec.Max(x, TVec.Broadcast(activation.Alpha)), TVec.Broadcast(activation.Beta));
            case ActivationKind.HardSigmoid: return HardSigmoid(x, activation.Alpha, activation.Beta);
            case ActivationKind.HardSwish: return x * HardSigmoid(x, 1f / 6f, 0.5f);
            case ActivationKind.Sigmoid: return TVec.Broadcast(1f) / (TVec.Broadcast(1f) + TVec.Exp(TVec.Zero - x));
            case ActivationKind.Swish: return x / (TVec.Broadcast(1f) + TVec.Exp(TVec.Zero - x));
            default: throw new InvalidOperationException($"Unknown activation {activation.Kind}.");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec HardSigmoid<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> =>
        TVec.Max(TVec.Zero, TVec.Min(TVec.Broadcast(1f), TVec.MultiplyAdd(x, TVec.Broadcast(alpha), TVec.Broadcast(beta))));

    /// <summary>Applies the activation in place over <paramref name="count"/> floats, vector body then scalar tail.</summary>
    public static unsafe void ApplyInPlace<TVec>(float* data, int count, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        if (activation.Kind == ActivationKind.None) return;
        int i = 0;
        for (; i <= count - TVec.Count; i += TVec.Count) Apply(TVec.Load(data + i), activation).Store(data + i);
        for (; i < count; i++) data[i] = activation.Apply(data[i]);
    }
}
