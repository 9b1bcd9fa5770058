namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// A dense GEMV over output channels for one-pixel layers (classifier, squeeze-and-excitation FCs, 1x1 convolutions on
/// [C,1,1]): the weights are stored transposed, <c>[inputs, outputs]</c>, so each input value is broadcast against a
/// contiguous run of output channels.
/// </summary>
internal static unsafe class FullyConnectedKernel
{
    /// <summary>Transposes row-major <c>W[outputs, inputs]</c> to <c>[inputs, outputs]</c>.</summary>
    public static float[] Transpose(ReadOnlySpan<float> weights, int outputs, int inputs)
    {
        float[] transposed = GC.AllocateArray<float>(weights.Length, pinned: true);
        for (int o = 0; o < outputs; o++)
            for (int i = 0; i < inputs; i++)
                transposed[(long)i * outputs + o] = weights[o * inputs + i];
        return transposed;
    }

    /// <summary>
    /// Outputs [start, end): <c>output[o] = activation(bias[o] + sum_i input[i] * W[o, i] + residual[o])</c>;
    /// <paramref name="residual"/> may be null. The per-output summation order does not depend on the range.
    /// </summary>
    public static void Run<TVec>(float* input, float* transposedWeights, float* bias, float* residual, float* output,
        int inputs, int outputs, int start, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        int o = Block<TVec>(input, transposedWeights, bias, residual, output, inputs, outputs, start, end);
        // A ragged end: one more vector ending at `end` (recomputing a few outputs to the same bits), or scalar when narrower.
        if (o < end && end - start >= TVec.Count) Block<TVec>(input, transposedWeights, bias, residual, output, inputs, outputs, end - TVec.Count, end);
        else Block<Scalar>(input, transposedWeights, bias, residual, output, inputs, outputs, o, end);
        ActivationPass.Apply<TVec>(output + start, output + start, end - start, activation);
    }

    private static int Block<TVec>(float* input, float* weights, float* bias, float* residual, float* output,
        int inputs, int outputs, int o, int end) where TVec : struct, IFloatVector<TVec>
    {
        int n = TVec.Count;
        for (; o + 4 * n <= end; o += 4 * n)
        {
            TVec a0 = TVec.Load(bias + o), a1 = TVec.Load(bias + o + n), a2 = TVec.Load(bias + o + 2 * n), a3 = TVec.Load(bias + o + 3 * n);
            float* w = weights + o;
            for (int i = 0; i < inputs; i++, w += outputs)
            {
                TVec x = TVec.Broadcast(input[i]);
                a0 = TVec.MultiplyAdd(x, TVec.Load(w), a0);
                a1 = TVec.MultiplyAdd(x, TVec.Load(w + n), a1);
                a2 = TVec.MultiplyAdd(x, TVec.Load(w + 2 * n), a2);
                a3 = TVec.MultiplyAdd(x, TVec.Load(w + 3 * n), a3);
            }
            Finish(a0, residual, output, o);
            Finish(a1, residual, output, o + n);
            Finish(a2, residual, output, o + 2 * n);
            Finish(a3, residual, output, o + 3 * n);
        }
        for (; o + n <= end; o += n)
        {
            TVec a = TVec.Load(bias + o);
            float* w = weights + o;
            for (int i = 0; i < inputs; i++, w += outputs) a = TVec.MultiplyAdd(TVec.Broadcast(input[i]), TVec.Load(w), a);
            Finish(a, residual, output, o);
        }
        return o;
    }

    private static void Finish<TVec>(TVec sum, float* residual, float* output, int o) where TVec : struct, IFloatVector<TVec>
    {
        if (residual != null) sum += TVec.Load(residual + o);
        sum.Store(output + o);
    }
}
