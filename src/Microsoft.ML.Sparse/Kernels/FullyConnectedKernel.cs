using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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

    /// <summary>
    /// The sparse GEMV for pruned weights, outputs [start, end): each output is a dot product over its row's nonzeros only
    /// (<see cref="SparseRows"/>), in four interleaved partial sums so consecutive multiply-adds do not wait on each other.
    /// Same contract as <see cref="Run"/>; the per-output order depends only on the row, never on the range.
    /// </summary>
    public static void RunSparse<TVec>(float* input, SparseRows weights, float* bias, float* residual, float* output,
        int start, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        int* rowStarts = weights.RowStarts, columns = weights.Columns;
        float* values = weights.Values;
        // The gather path is chosen per call, never per output, so a range split cannot change any output's bits.
        bool gather = TVec.Count >= 8 && Avx2.IsSupported;
        for (int o = start; o < end; o++)
        {
            float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
            int k = rowStarts[o], rowEnd = rowStarts[o + 1];
            if (gather)
            {
                // Eight nonzeros at a time: gather their inputs, multiply-add into eight lanes, reduce once per row.
                Vector256<float> lanes = Vector256<float>.Zero;
                for (; k + 8 <= rowEnd; k += 8)
                    lanes = Fma.MultiplyAdd(Vector256.Load(values + k), Avx2.GatherVector256(input, Vector256.Load(columns + k), sizeof(float)), lanes);
                s1 = Vector256.Sum(lanes);
            }
            for (; k + 4 <= rowEnd; k += 4)
            {
                s0 = MathF.FusedMultiplyAdd(values[k], input[columns[k]], s0);
                s1 = MathF.FusedMultiplyAdd(values[k + 1], input[columns[k + 1]], s1);
                s2 = MathF.FusedMultiplyAdd(values[k + 2], input[columns[k + 2]], s2);
                s3 = MathF.FusedMultiplyAdd(values[k + 3], input[columns[k + 3]], s3);
            }
            for (; k < rowEnd; k++) s0 = MathF.FusedMultiplyAdd(values[k], input[columns[k]], s0);
            float sum = bias[o] + ((s0 + s1) + (s2 + s3));
            output[o] = residual != null ? sum + residual[o] : sum;
        }
        ActivationPass.Apply<TVec>(output + start, output + start, end - start, activation);
        GC.KeepAlive(weights);
    }
}

/// <summary>Row-compressed (CSR) weights <c>W[outputs, inputs]</c> for <see cref="FullyConnectedKernel.RunSparse"/>, in pinned arrays.</summary>
internal sealed unsafe class SparseRows
{
    private readonly int[] _rowStarts, _columns;
    private readonly float[] _values;

    /// <summary>Keeps the nonzeros of row-major <paramref name="weights"/>.</summary>
    public SparseRows(ReadOnlySpan<float> weights, int outputs, int inputs)
    {
        int nonZeros = weights.Length - weights.Count(0f);
        _rowStarts = GC.AllocateArray<int>(outputs + 1, pinned: true);
        _columns = GC.AllocateArray<int>(nonZeros, pinned: true);
        _values = GC.AllocateArray<float>(nonZeros, pinned: true);
        int next = 0;
        for (int o = 0; o < outputs; o++)
        {
            _rowStarts[o] = next;
            for (int i = 0; i < inputs; i++)
            {
                float value = weights[o * inputs + i];
                if (value == 0f) continue;
                _columns[next] = i;
                _values[next++] = value;
            }
        }
        _rowStarts[outputs] = next;
    }

    /// <summary>outputs + 1 offsets into <see cref="Columns"/>/<see cref="Values"/>: row o is [RowStarts[o], RowStarts[o + 1]).</summary>
    public int* RowStarts => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_rowStarts));

    /// <summary>The input index of each nonzero.</summary>
    public int* Columns => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_columns));

    /// <summary>The nonzero weights, row after row.</summary>
    public float* Values => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_values));

    /// <summary>Stored nonzeros.</summary>
    public int NonZeroCount => _values.Length;
}
