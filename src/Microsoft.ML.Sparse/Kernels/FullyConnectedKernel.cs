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
    /// The sparse GEMV for pruned weights, outputs [start, end), any range: <see cref="SparseRows.SliceOutputs"/>
    /// consecutive outputs share a slice whose k-th step holds each output's k-th nonzero, so one vector of lanes is a run
    /// of outputs, each step is a gather of their inputs and one multiply-add, and the activation runs on whole vectors.
    /// Same contract as <see cref="Run"/>; each output sums its nonzeros in row order and then adds its bias, the same bits
    /// at every width and for every range.
    /// </summary>
    /// <remarks>
    /// The row-at-a-time form it replaces (a dot product per output, reduced across lanes) applied the activation one output
    /// at a time: EfficientNet-B0's 48 -> 1152 excitation with Sigmoid at 90% took 15 us in inference, 5.4 us this way
    /// (Zen 5). Without an activation both forms are bound by the gathers, about 11 cycles per eight lanes on Zen 5
    /// (PointwiseGemvBenchmarks at 90%: 1024 x 1001 0.87x -> 0.70x the dense time, 576 x 144 1.50x -> 1.27x).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunSparse<TVec>(float* input, SparseRows weights, float* bias, float* residual, float* output,
        int start, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        if (start >= end) return;
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
        const int slice = SparseRows.SliceOutputs;
        var (alpha, beta) = parameters;
        int n = TVec.Count;
        int* sliceSteps = weights.SliceSteps, columns = weights.Columns;
        float* values = weights.Values;
        float* lanes = stackalloc float[slice];
        for (int s = start / slice; s * slice < end; s++)
        {
            int first = s * slice, stepsFrom = sliceSteps[s], stepsTo = sliceSteps[s + 1];
            bool whole = first >= start && first + slice <= end;
            for (int g = 0; g < slice; g += n)
            {
                // One vector of the slice's outputs: its lanes' nonzeros, step after step (a lane past its row's end reads
                // index -1 and weight 0, which leaves its sum as it is).
                TVec sum = TVec.Zero;
                long at = (long)stepsFrom * slice + g, stop = (long)stepsTo * slice + g;
                for (; at < stop; at += slice)
                    sum = TVec.MultiplyAdd(TVec.Load(values + at), TVec.GatherOrZero(input, columns + at), sum);
                if (whole) Finish<TVec, TFunction>(TVec.Load(bias + first + g) + sum, residual, output, first + g, alpha, beta);
                else sum.Store(lanes + g);
            }
            if (whole) continue;
            // A slice the range or the layer ends inside: the outputs in range, one at a time, from the same sums.
            for (int o = Math.Max(first, start), last = Math.Min(first + slice, end); o < last; o++)
                Finish<Scalar, TFunction>(Scalar.Load(bias + o) + Scalar.Load(lanes + o - first), residual, output, o, alpha, beta);
        }
    }
}

/// <summary>
/// Pruned weights <c>W[outputs, inputs]</c> for <see cref="FullyConnectedKernel.RunSparse"/> in slices of
/// <see cref="SliceOutputs"/> outputs (sliced ELLPACK): step k of a slice holds, for each of its outputs in turn, the
/// column and weight of that output's k-th nonzero, or -1 and 0 past the end of its row; a slice has as many steps as its
/// longest row. Pinned arrays.
/// </summary>
internal sealed unsafe class SparseRows
{
    /// <summary>Outputs per slice: one AVX-512 vector, two AVX2 ones.</summary>
    public const int SliceOutputs = 16;

    private readonly int[] _sliceSteps, _columns;
    private readonly float[] _values;

    /// <summary>Keeps the nonzeros of row-major <paramref name="weights"/>.</summary>
    public SparseRows(ReadOnlySpan<float> weights, int outputs, int inputs) : this(weights, outputs, inputs, MeasureSlices(weights, outputs, inputs, out _))
    {
    }

    /// <summary>
    /// The sliced rows of <paramref name="weights"/>, or null, before anything is stored, when the slices would run more
    /// than <paramref name="maximumImbalance"/> times the steps of evenly filled ones (a slice runs as many steps as its
    /// longest row, so very uneven rows make most steps padding).
    /// </summary>
    public static SparseRows? CreateIfBalanced(ReadOnlySpan<float> weights, int outputs, int inputs, int maximumImbalance)
    {
        int[] sliceSteps = MeasureSlices(weights, outputs, inputs, out long balancedSteps);
        return sliceSteps[^1] <= maximumImbalance * balancedSteps ? new SparseRows(weights, outputs, inputs, sliceSteps) : null;
    }

    /// <summary>
    /// Slice step offsets (pinned, slices + 1) from the row lengths, and <paramref name="balancedSteps"/>: the steps if
    /// every slice's nonzeros were spread evenly over its outputs (each slice's mean row length, rounded up).
    /// </summary>
    private static int[] MeasureSlices(ReadOnlySpan<float> weights, int outputs, int inputs, out long balancedSteps)
    {
        int slices = (outputs + SliceOutputs - 1) / SliceOutputs;
        int[] sliceSteps = GC.AllocateArray<int>(slices + 1, pinned: true);
        balancedSteps = 0;
        for (int s = 0; s < slices; s++)
        {
            int longest = 0, total = 0, first = s * SliceOutputs, last = Math.Min(outputs, first + SliceOutputs);
            for (int o = first; o < last; o++)
            {
                int length = inputs - weights.Slice(o * inputs, inputs).Count(0f);
                longest = Math.Max(longest, length);
                total += length;
            }
            sliceSteps[s + 1] = checked(sliceSteps[s] + longest);
            balancedSteps += (total + (last - first) - 1) / (last - first);
        }
        return sliceSteps;
    }

    private SparseRows(ReadOnlySpan<float> weights, int outputs, int inputs, int[] sliceSteps)
    {
        _sliceSteps = sliceSteps;
        long stored = (long)_sliceSteps[^1] * SliceOutputs;
        _columns = GC.AllocateArray<int>(checked((int)stored), pinned: true);
        _values = GC.AllocateArray<float>((int)stored, pinned: true);
        _columns.AsSpan().Fill(-1);
        for (int o = 0; o < outputs; o++)
        {
            long at = (long)_sliceSteps[o / SliceOutputs] * SliceOutputs + o % SliceOutputs;
            for (int i = 0; i < inputs; i++)
            {
                float value = weights[o * inputs + i];
                if (value == 0f) continue;
                _columns[at] = i;
                _values[at] = value;
                at += SliceOutputs;
                NonZeroCount++;
            }
        }
    }

    /// <summary>slices + 1 step offsets: slice s is steps [SliceSteps[s], SliceSteps[s + 1]), each <see cref="SliceOutputs"/> entries.</summary>
    public int* SliceSteps => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sliceSteps));

    /// <summary>The input index of each entry, -1 for padding.</summary>
    public int* Columns => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_columns));

    /// <summary>The weight of each entry, 0 for padding.</summary>
    public float* Values => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_values));

    /// <summary>Stored nonzeros (padding not counted).</summary>
    public int NonZeroCount { get; }
}
