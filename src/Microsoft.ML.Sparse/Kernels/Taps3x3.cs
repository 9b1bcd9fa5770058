using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>The three column taps (kx = 0, 1, 2) of one input row of a 3x3 window at one output vector.</summary>
internal readonly struct Row3<TVec>(TVec left, TVec middle, TVec right) where TVec : struct, IFloatVector<TVec>
{
    public readonly TVec Left = left, Middle = middle, Right = right;
}

/// <summary>What every 3x3 depthwise path shares: one channel's weights as vectors and one row of taps into a sum.</summary>
internal static unsafe class Taps3x3
{
    /// <summary>
    /// The nine weights and the bias of one channel as vectors, into the caller's locals: passed around as a struct they
    /// were re-read from the stack per FMA.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Broadcast<TVec>(float* weights, float bias, out TVec w0, out TVec w1, out TVec w2, out TVec w3, out TVec w4, out TVec w5,
        out TVec w6, out TVec w7, out TVec w8, out TVec b) where TVec : struct, IFloatVector<TVec>
    {
        w0 = TVec.Broadcast(weights[0]); w1 = TVec.Broadcast(weights[1]); w2 = TVec.Broadcast(weights[2]);
        w3 = TVec.Broadcast(weights[3]); w4 = TVec.Broadcast(weights[4]); w5 = TVec.Broadcast(weights[5]);
        w6 = TVec.Broadcast(weights[6]); w7 = TVec.Broadcast(weights[7]); w8 = TVec.Broadcast(weights[8]); b = TVec.Broadcast(bias);
    }

    /// <summary>
    /// For AVX-512 masked row loads from column <paramref name="first"/>: the lanes j whose column first + j lies in
    /// [0, <paramref name="width"/>) (the others are in the padding or past the row, read as zero and never touched).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Vector512<float> ColumnsInRow(int first, int width)
    {
        Vector512<int> column = Vector512<int>.Indices + Vector512.Create(first);
        return (Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, Vector512.Create(width))).AsSingle();
    }

    /// <summary><paramref name="sum"/> plus one tap row (kx = 0, 1, 2 in order) of <paramref name="v"/>: every path's summation order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Fma3<TVec>(in Row3<TVec> v, TVec w0, TVec w1, TVec w2, TVec sum) where TVec : struct, IFloatVector<TVec> =>
        TVec.MultiplyAdd(v.Right, w2, TVec.MultiplyAdd(v.Middle, w1, TVec.MultiplyAdd(v.Left, w0, sum)));
}
