using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Global average pooling over CHW: one mean per channel.</summary>
internal static unsafe class PoolingKernel
{
    /// <summary><c>output[c] = mean(input[c, :, :])</c> for channels [channelStart, channelEnd); channel planes lie <paramref name="planeStride"/> floats apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GlobalAverage<TVec>(float* input, float* output, int pixels, int planeStride, int channelStart, int channelEnd) where TVec : struct, IFloatVector<TVec>
    {
        float scale = 1f / pixels;
        for (int c = channelStart; c < channelEnd; c++)
        {
            float* plane = input + (long)c * planeStride;
            TVec sum = TVec.Zero;
            int p = 0;
            for (; p + TVec.Count <= pixels; p += TVec.Count) sum += TVec.Load(plane + p);
            float total = sum.Sum();
            for (; p < pixels; p++) total += plane[p];
            output[c] = total * scale;
        }
    }
}
