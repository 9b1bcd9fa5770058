using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Global average pooling over CHW: one mean per channel.</summary>
internal static unsafe class PoolingKernel
{
    /// <summary>
    /// <c>output[c] = mean(input[c, :, :])</c> for channels [channelStart, channelEnd); channel planes lie
    /// <paramref name="planeStride"/> floats apart. Four partial sums, so consecutive adds do not wait on each other's
    /// latency where the plane is in L1 (alone, a 112x112 plane hot in L1 pools at ~320 GB/s on Zen 5). Inside
    /// inferences the large squeezes read their planes from L2 and L3 and take as long as with one sum (EfficientNet-B0's
    /// 32@112x112: 16 us either way): there the read is the cost.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GlobalAverage<TVec>(float* input, float* output, int pixels, int planeStride, int channelStart, int channelEnd) where TVec : struct, IFloatVector<TVec>
    {
        float scale = 1f / pixels;
        int n = TVec.Count;
        for (int c = channelStart; c < channelEnd; c++)
        {
            float* plane = input + (long)c * planeStride;
            TVec s0 = TVec.Zero, s1 = TVec.Zero, s2 = TVec.Zero, s3 = TVec.Zero;
            int p = 0;
            for (; p + 4 * n <= pixels; p += 4 * n)
            {
                s0 += TVec.Load(plane + p);
                s1 += TVec.Load(plane + p + n);
                s2 += TVec.Load(plane + p + 2 * n);
                s3 += TVec.Load(plane + p + 3 * n);
            }
            for (; p + n <= pixels; p += n) s0 += TVec.Load(plane + p);
            float total = ((s0 + s1) + (s2 + s3)).Sum();
            for (; p < pixels; p++) total += plane[p];
            output[c] = total * scale;
        }
    }
}
