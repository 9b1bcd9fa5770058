namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>What every GEMV kernel's output range must show against the scalar reference.</summary>
internal static class GemvRangeAssert
{
    /// <summary>Written before a range run, so outputs outside the range can be seen untouched.</summary>
    public const float Untouched = 1234.5f;

    /// <summary>
    /// <paramref name="part"/> (prefilled with <see cref="Untouched"/>) ran outputs [<paramref name="start"/>, <paramref name="end"/>):
    /// outside it nothing is written; inside, each output matches bias + residual + W x input within 1e-5 and has the bits of
    /// <paramref name="whole"/>, a run over a larger range.
    /// </summary>
    public static void Matches(float[] part, float[] whole, float[] weights, float[] input, float[] bias, float[]? residual, int start, int end, string what)
    {
        int inputs = input.Length;
        for (int o = 0; o < part.Length; o++)
        {
            if (o < start || o >= end)
            {
                Assert.Equal(Untouched, part[o]);
                continue;
            }
            double expected = bias[o] + (residual?[o] ?? 0);
            for (int i = 0; i < inputs; i++) expected += (double)weights[o * inputs + i] * input[i];
            Assert.True(Math.Abs(part[o] - expected) <= 1e-5 * Math.Max(1, Math.Abs(expected)), $"{what}: output {o} is {part[o]}, expected {expected}.");
            Assert.Equal(whole[o], part[o]);
        }
    }
}
