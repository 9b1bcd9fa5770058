using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>The five column taps (kx = 0..4) of one input row of a 5x5 window at one output vector.</summary>
internal readonly struct Row5<TVec>(TVec t0, TVec t1, TVec t2, TVec t3, TVec t4) where TVec : struct, IFloatVector<TVec>
{
    public readonly TVec T0 = t0, T1 = t1, T2 = t2, T3 = t3, T4 = t4;
}

/// <summary>
/// What the 5x5 depthwise paths share with <see cref="Taps3x3"/>: one row of taps into a sum in (kx) order. The 25 weights
/// do not fit the registers beside the sums and rows, so each FMA takes its weight as a broadcast from memory (an
/// embedded-broadcast operand under AVX-512): a load per FMA, which the load ports have room for.
/// </summary>
internal static unsafe class Taps5x5
{
    /// <summary><paramref name="sum"/> plus one tap row of <paramref name="v"/> with weights <paramref name="w"/>[0..4], kx in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Fma5<TVec>(in Row5<TVec> v, float* w, TVec sum) where TVec : struct, IFloatVector<TVec> =>
        TVec.MultiplyAdd(v.T4, TVec.Broadcast(w[4]), TVec.MultiplyAdd(v.T3, TVec.Broadcast(w[3]),
            TVec.MultiplyAdd(v.T2, TVec.Broadcast(w[2]), TVec.MultiplyAdd(v.T1, TVec.Broadcast(w[1]), TVec.MultiplyAdd(v.T0, TVec.Broadcast(w[0]), sum)))));
}
