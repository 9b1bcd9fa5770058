using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// A dense GEMV over output channels for one-pixel layers (classifier, squeeze-and-excitation FCs, 1x1 convolutions on
/// [C,1,1]): the weights are packed in panels of <see cref="PanelOutputs"/> output channels, each panel <c>[inputs, 64]</c>
/// and contiguous, so each input value is broadcast against a run of output channels and the weights stream in order.
/// </summary>
/// <remarks>
/// A classifier's weights (4 MB for 1024 x 1001) come from memory every inference. Stored plainly transposed, the kernel
/// read 256 bytes per input row and jumped 4 KB to the next, a new page per access that the hardware prefetcher never
/// follows: the layer took 300 us in a MobileNet v1 inference against 66 us with its weights hot (Zen 4). A panel is one
/// sequential stream.
/// </remarks>
internal static unsafe class FullyConnectedKernel
{
    /// <summary>Output channels per panel: four AVX-512 vectors. Ranges handed to <see cref="Run"/> start at multiples of it.</summary>
    public const int PanelOutputs = 64;

    /// <summary>
    /// Packs row-major <c>W[outputs, inputs]</c> into panels: output o, input i at
    /// <c>(o / 64) * inputs * 64 + i * 64 + o % 64</c>; the last panel's missing outputs are zero.
    /// </summary>
    public static float[] Pack(ReadOnlySpan<float> weights, int outputs, int inputs)
    {
        int panels = (outputs + PanelOutputs - 1) / PanelOutputs;
        float[] packed = GC.AllocateArray<float>(checked(panels * inputs * PanelOutputs), pinned: true);
        for (int o = 0; o < outputs; o++)
        {
            long panel = (long)(o / PanelOutputs) * inputs * PanelOutputs;
            for (int i = 0; i < inputs; i++)
                packed[panel + (long)i * PanelOutputs + o % PanelOutputs] = weights[o * inputs + i];
        }
        return packed;
    }

    /// <summary>
    /// Outputs [start, end): <c>output[o] = activation(bias[o] + sum_i input[i] * W[o, i] + residual[o])</c>, weights as
    /// <see cref="Pack"/> made them; <paramref name="start"/> is a multiple of <see cref="PanelOutputs"/> and
    /// <paramref name="residual"/> may be null. Each output sums bias, then inputs in order, whatever the range or width.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run<TVec>(float* input, float* packedWeights, float* bias, float* residual, float* output,
        int inputs, int outputs, int start, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        if (start >= end) return;
        if (start % PanelOutputs != 0 || start < 0 || end > outputs)
            throw new ArgumentOutOfRangeException(nameof(start), $"Outputs [{start}, {end}) must lie in [0, {outputs}) and start at a multiple of {PanelOutputs}.");
        var gemv = new DenseGemv<TVec>(input, packedWeights, bias, residual, output, inputs, start, end, activation);
        ActivationPass.DispatchClampsAsClip(ref gemv, activation);
    }

    private readonly struct DenseGemv<TVec>(float* input, float* packedWeights, float* bias, float* residual, float* output,
        int inputs, int start, int end, Activation activation) : IActivationConsumer where TVec : struct, IFloatVector<TVec>
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction =>
            Dense<TVec, TFunction>(input, packedWeights, bias, residual, output, inputs, start, end, ActivationPass.Parameters(activation));
    }

    /// <summary><see cref="Run"/> with the activation as a type, applied to the sums in registers before they are stored.</summary>
    private static void Dense<TVec, TFunction>(float* input, float* packedWeights, float* bias, float* residual, float* output,
        int inputs, int start, int end, (float Alpha, float Beta) parameters) where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        var (alpha, beta) = parameters;
        int n = TVec.Count;
        float* lanes = stackalloc float[n];
        for (int panelStart = start; panelStart < end; panelStart += PanelOutputs)
        {
            float* panel = packedWeights + (long)panelStart * inputs;
            int panelEnd = Math.Min(end, panelStart + PanelOutputs), o = panelStart;
            for (; o + 4 * n <= panelEnd; o += 4 * n)
            {
                TVec a0 = TVec.Load(bias + o), a1 = TVec.Load(bias + o + n), a2 = TVec.Load(bias + o + 2 * n), a3 = TVec.Load(bias + o + 3 * n);
                float* w = panel + (o - panelStart);
                for (int i = 0; i < inputs; i++, w += PanelOutputs)
                {
                    TVec x = TVec.Broadcast(input[i]);
                    a0 = TVec.MultiplyAdd(x, TVec.Load(w), a0);
                    a1 = TVec.MultiplyAdd(x, TVec.Load(w + n), a1);
                    a2 = TVec.MultiplyAdd(x, TVec.Load(w + 2 * n), a2);
                    a3 = TVec.MultiplyAdd(x, TVec.Load(w + 3 * n), a3);
                }
                Finish<TVec, TFunction>(a0, residual, output, o, alpha, beta);
                Finish<TVec, TFunction>(a1, residual, output, o + n, alpha, beta);
                Finish<TVec, TFunction>(a2, residual, output, o + 2 * n, alpha, beta);
                Finish<TVec, TFunction>(a3, residual, output, o + 3 * n, alpha, beta);
            }
            for (; o < panelEnd; o += n)
            {
                // Whole vectors, the last one over the panel's zero padding when the outputs end inside it: its bias comes
                // from a copy and only the outputs in range are stored.
                int valid = Math.Min(n, panelEnd - o);
                new Span<float>(lanes, n).Clear();
                new ReadOnlySpan<float>(bias + o, valid).CopyTo(new Span<float>(lanes, n));
                TVec a = TVec.Load(lanes);
                float* w = panel + (o - panelStart);
                for (int i = 0; i < inputs; i++, w += PanelOutputs) a = TVec.MultiplyAdd(TVec.Broadcast(input[i]), TVec.Load(w), a);
                a.Store(lanes);
                for (int j = 0; j < valid; j++)
                    Finish<Scalar, TFunction>(Scalar.Load(lanes + j), residual, output, o + j, alpha, beta);
            }
        }
    }

    /// <summary><c>output[o..] = activation(sum + residual[o..])</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<TVec, TFunction>(TVec sum, float* residual, float* output, int o, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        if (residual != null) sum += TVec.Load(residual + o);
        TFunction.Apply(sum, alpha, beta).Store(output + o);
    }

    /// <summary>
    /// The sparse GEMV for pruned weights, outputs [start, end): each output is a dot product over its row's nonzeros only
    /// (<see cref="SparseRows"/>), in four interleaved partial sums so consecutive multiply-adds do not wait on each other.
    /// Same contract as <see cref="Run"/>; the per-output order depends only on the row, never on the range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunSparse<TVec>(float* input, SparseRows weights, float* bias, float* residual, float* output,
        int start, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        var gemv = new SparseGemv<TVec>(input, weights, bias, residual, output, start, end, activation);
        ActivationPass.DispatchClampsAsClip(ref gemv, activation);
        GC.KeepAlive(weights);
    }

    private readonly struct SparseGemv<TVec>(float* input, SparseRows weights, float* bias, float* residual, float* output,
        int start, int end, Activation activation) : IActivationConsumer where TVec : struct, IFloatVector<TVec>
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction =>
            Sparse<TVec, TFunction>(input, weights, bias, residual, output, start, end, ActivationPass.Parameters(activation));
    }

    private static void Sparse<TVec, TFunction>(float* input, SparseRows weights, float* bias, float* residual, float* output,
        int start, int end, (float Alpha, float Beta) parameters) where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        var (alpha, beta) = parameters;
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
            Finish<Scalar, TFunction>(Scalar.Broadcast(bias[o] + ((s0 + s1) + (s2 + s3))), residual, output, o, alpha, beta);
        }
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
