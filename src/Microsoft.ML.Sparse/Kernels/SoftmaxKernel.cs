using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Numerically stable softmax over a whole tensor (subtracts the maximum before exponentiating).</summary>
internal static unsafe class SoftmaxKernel
{
    /// <summary><c>output[i] = exp(input[i] - max) / sum_j exp(input[j] - max)</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TVec>(float* input, float* output, int length) where TVec : struct, IFloatVector<TVec>
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < length; i++) max = MathF.Max(max, input[i]);
        int j = ExpBlock(input, output, TVec.Broadcast(max), 0, length, out float vectorSum);
        ExpBlock(input, output, Scalar.Broadcast(max), j, length, out float tailSum);
        float scale = 1f / (vectorSum + tailSum);
        for (int i = 0; i < length; i++) output[i] *= scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ExpBlock<TVec>(float* input, float* output, TVec max, int i, int end, out float sum) where TVec : struct, IFloatVector<TVec>
    {
        TVec total = TVec.Zero;
        for (; i + TVec.Count <= end; i += TVec.Count)
        {
            TVec e = TVec.Exp(TVec.Load(input + i) - max);
            e.Store(output + i);
            total += e;
        }
        sum = total.Sum();
        return i;
    }
}
