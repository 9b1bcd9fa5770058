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
        var gemv = new SparseGemv<TVec, GatheredSlices>(new GatheredSlices(weights), input, bias, residual, output, start, end, activation);
        ActivationPass.DispatchClampsAsClip(ref gemv, activation);
        GC.KeepAlive(weights);
    }

    /// <summary>
    /// The sparse GEMV over <see cref="PermutedSparseRows"/>, outputs [start, end), any range: where <see cref="RunSparse"/>
    /// gathers each step's inputs, here a slice reads the inputs in blocks of <see cref="PermutedSparseRows.BlockInputs"/>,
    /// two vectors held in registers, and each step picks its lanes' inputs from them with one two-register permute
    /// (AVX-512's vpermt2ps). Same contract and same bits as <see cref="RunSparse"/>: each output sums its nonzeros in row
    /// order, then adds its bias.
    /// </summary>
    /// <remarks>
    /// A 16-lane gather costs about 22 cycles on Zen 5 and a permute one, so padding each (slice, block) to its longest
    /// lane (about twice the nonzeros at 90%) still leaves the steps several times cheaper, for about as many bytes per
    /// nonzero (a byte offset and a weight, 5 bytes, against an int index and a weight). PointwiseGemvBenchmarks, Zen 5, at
    /// 90%: 1024 x 1001 0.68x -> 0.25x the dense time, 576 x 144 and 48 x 1152 about 2.5x faster than gathered. Widths
    /// other than 512-bit (no two-register permute) take a lane-by-lane path over the same format, for tests and for a plan
    /// run narrower than it was prepared; the layer prepares this format only for 512-bit plans.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunPermuted<TVec>(float* input, PermutedSparseRows weights, float* bias, float* residual, float* output,
        int start, int end, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        if (start >= end) return;
        var gemv = new SparseGemv<TVec, PermutedSlices>(new PermutedSlices(weights), input, bias, residual, output, start, end, activation);
        ActivationPass.DispatchClampsAsClip(ref gemv, activation);
        GC.KeepAlive(weights);
    }

    /// <summary>The sums of one slice of a sparse GEMV's outputs, each output's nonzeros in row order from 0.</summary>
    private interface ISliceSums
    {
        /// <summary>Slice <paramref name="s"/>'s <see cref="SparseRows.SliceOutputs"/> sums into <paramref name="lanes"/>.</summary>
        void Sums<TVec>(float* input, int s, float* lanes) where TVec : struct, IFloatVector<TVec>;
    }

    private readonly struct SparseGemv<TVec, TSlices>(TSlices slices, float* input, float* bias, float* residual, float* output,
        int start, int end, Activation activation) : IActivationConsumer where TVec : struct, IFloatVector<TVec> where TSlices : struct, ISliceSums
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction =>
            Sparse<TVec, TFunction, TSlices>(slices, input, bias, residual, output, start, end, ActivationPass.Parameters(activation));
    }

    /// <summary>Slice after slice: the weights' form gives the sums, bias, residual and activation run on whole vectors.</summary>
    private static void Sparse<TVec, TFunction, TSlices>(TSlices slices, float* input, float* bias, float* residual, float* output,
        int start, int end, (float Alpha, float Beta) parameters)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction where TSlices : struct, ISliceSums
    {
        const int slice = SparseRows.SliceOutputs;
        var (alpha, beta) = parameters;
        int n = TVec.Count;
        float* lanes = stackalloc float[slice];
        for (int s = start / slice; s * slice < end; s++)
        {
            slices.Sums<TVec>(input, s, lanes);
            int first = s * slice;
            if (first >= start && first + slice <= end)
            {
                for (int g = 0; g < slice; g += n)
                    Finish<TVec, TFunction>(TVec.Load(bias + first + g) + TVec.Load(lanes + g), residual, output, first + g, alpha, beta);
                continue;
            }
            // A slice the range or the layer ends inside: the outputs in range, one at a time, from the same sums.
            for (int o = Math.Max(first, start), last = Math.Min(first + slice, end); o < last; o++)
                Finish<Scalar, TFunction>(Scalar.Load(bias + o) + Scalar.Load(lanes + o - first), residual, output, o, alpha, beta);
        }
    }

    /// <summary><see cref="SparseRows"/>: one vector of the slice's outputs at a time, a gather and a multiply-add per step.</summary>
    private readonly struct GatheredSlices(SparseRows weights) : ISliceSums
    {
        public void Sums<TVec>(float* input, int s, float* lanes) where TVec : struct, IFloatVector<TVec>
        {
            const int slice = SparseRows.SliceOutputs;
            int* sliceSteps = weights.SliceSteps, columns = weights.Columns;
            float* values = weights.Values;
            for (int g = 0; g < slice; g += TVec.Count)
            {
                // A lane past its row's end reads index -1 and weight 0, which leaves its sum as it is.
                TVec sum = TVec.Zero;
                for (long at = (long)sliceSteps[s] * slice + g, stop = (long)sliceSteps[s + 1] * slice + g; at < stop; at += slice)
                    sum = TVec.MultiplyAdd(TVec.Load(values + at), TVec.GatherOrZero(input, columns + at), sum);
                sum.Store(lanes + g);
            }
        }
    }

    /// <summary><see cref="PermutedSparseRows"/>: per block two input vectors, then one permute and one multiply-add per step.</summary>
    private readonly struct PermutedSlices(PermutedSparseRows weights) : ISliceSums
    {
        public void Sums<TVec>(float* input, int s, float* lanes) where TVec : struct, IFloatVector<TVec>
        {
            if (MaskedVector.Supported<TVec>()) Permuted(input, s).Store(lanes);
            else ByLane(input, s, lanes);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private Vector512<float> Permuted(float* input, int s)
        {
            const int slice = PermutedSparseRows.SliceOutputs, blockInputs = PermutedSparseRows.BlockInputs;
            int* blocks = weights.Blocks;
            byte* offsets = weights.Offsets;
            float* values = weights.Values;
            int inputs = weights.Inputs;
            var sum = Vector512<float>.Zero;
            var inBlock = Vector512.Create((uint)blockInputs);
            long at = (long)weights.SliceSteps[s] * slice;
            for (int b = weights.SliceBlocks[s], last = weights.SliceBlocks[s + 1]; b < last; b++)
            {
                int from = (blocks[b] & 0xFFFF) * blockInputs, steps = blocks[b] >> 16;
                float* x = input + from;
                Vector512<float> low, high;
                if (from + blockInputs <= inputs)
                {
                    low = Vector512.Load(x);
                    high = Vector512.Load(x + 16);
                }
                else
                {
                    // The last block past the end of the input: masked loads read nothing there (no step selects those lanes).
                    var lane = Vector512<int>.Indices;
                    low = Avx512F.MaskLoad(x, Vector512.LessThan(lane, Vector512.Create(inputs - from)).AsSingle(), Vector512<float>.Zero);
                    high = Avx512F.MaskLoad(x + 16, Vector512.LessThan(lane, Vector512.Create(inputs - from - 16)).AsSingle(), Vector512<float>.Zero);
                }
                for (long stop = at + (long)steps * slice; at < stop; at += slice)
                {
                    Vector512<int> offset = Avx512F.ConvertToVector512Int32(Vector128.Load(offsets + at));
                    // Padding lanes (offset 255) take 0, not an input: an infinite or NaN input never meets a padding weight.
                    Vector512<float> picked = Vector512.ConditionalSelect(Vector512.LessThan(offset.AsUInt32(), inBlock).AsSingle(),
                        Avx512F.PermuteVar16x32x2(low, offset, high), Vector512<float>.Zero);
                    sum = Vector512.FusedMultiplyAdd(Vector512.Load(values + at), picked, sum);
                }
            }
            return sum;
        }

        /// <summary><see cref="Permuted"/> lane by lane, the same multiply-adds in the same order (padding adds 0 x 0).</summary>
        private void ByLane(float* input, int s, float* sums)
        {
            const int slice = PermutedSparseRows.SliceOutputs;
            new Span<float>(sums, slice).Clear();
            long at = (long)weights.SliceSteps[s] * slice;
            for (int b = weights.SliceBlocks[s], last = weights.SliceBlocks[s + 1]; b < last; b++)
            {
                int steps = weights.Blocks[b] >> 16;
                float* x = input + (weights.Blocks[b] & 0xFFFF) * PermutedSparseRows.BlockInputs;
                for (int t = 0; t < steps; t++, at += slice)
                    for (int lane = 0; lane < slice; lane++)
                    {
                        byte offset = weights.Offsets[at + lane];
                        sums[lane] = MathF.FusedMultiplyAdd(weights.Values[at + lane], offset == PermutedSparseRows.Padding ? 0f : x[offset], sums[lane]);
                    }
            }
        }
    }
}

/// <summary>
/// Pruned weights <c>W[outputs, inputs]</c> for <see cref="FullyConnectedKernel.RunPermuted"/>: slices of
/// <see cref="SliceOutputs"/> outputs as in <see cref="SparseRows"/>, and within a slice the inputs in blocks of
/// <see cref="BlockInputs"/>. For each block that any of the slice's outputs reads, the slice stores as many steps as its
/// outputs' most nonzeros in that block; step k holds, per output, the offset in the block (0-31) and the weight of its
/// k-th nonzero there, or <see cref="Padding"/> and 0. Blocks go in input order, so each output still meets its nonzeros
/// in row order. Pinned arrays: the layer keeps this object alive while kernels read them.
/// </summary>
internal sealed unsafe class PermutedSparseRows
{
    /// <summary>Outputs per slice: one AVX-512 vector of sums (the kernel's driver is shared with <see cref="SparseRows"/>).</summary>
    public const int SliceOutputs = SparseRows.SliceOutputs;

    /// <summary>Inputs per block: the two vectors one vpermt2ps selects from.</summary>
    public const int BlockInputs = 32;

    /// <summary>The offset of a padding entry (no input; its weight is 0).</summary>
    public const byte Padding = 255;

    private readonly int[] _sliceBlocks, _sliceSteps, _blocks;
    private readonly byte[] _offsets;
    private readonly float[] _values;

    /// <summary>Whether plans of <paramref name="width"/> run this format at full speed (512-bit vectors with vpermt2ps).</summary>
    public static bool RunsAt(SimdWidth width) => width == SimdWidth.Vector512 && Avx512F.IsSupported;

    /// <summary>
    /// The permuted rows of <paramref name="weights"/>, or null, before anything is stored, when they would take more
    /// bytes than the dense GEMV's panels (<see cref="FullyConnectedKernel.Pack"/>): very uneven rows, such as whole output
    /// channels pruned beside dense ones, pad most steps, and the dense GEMV then streams as few bytes without permutes.
    /// </summary>
    public static PermutedSparseRows? CreateIfSmaller(ReadOnlySpan<float> weights, int outputs, int inputs)
    {
        var layout = Measure(weights, outputs, inputs);
        long panelOutputs = (outputs + FullyConnectedKernel.PanelOutputs - 1) / FullyConnectedKernel.PanelOutputs * FullyConnectedKernel.PanelOutputs;
        return layout.TotalSteps * SliceOutputs * (sizeof(byte) + sizeof(float)) <= panelOutputs * inputs * sizeof(float)
            ? new PermutedSparseRows(weights, outputs, inputs, layout) : null;
    }

    /// <summary>Keeps the nonzeros of row-major <paramref name="weights"/>, however many bytes that takes.</summary>
    public static PermutedSparseRows Create(ReadOnlySpan<float> weights, int outputs, int inputs) =>
        new(weights, outputs, inputs, Measure(weights, outputs, inputs));

    /// <summary>Each (slice, block)'s steps, the most nonzeros any of the slice's outputs has in the block, and their totals.</summary>
    private static (int[] Steps, int NonZeros, long TotalSteps, int UsedBlocks) Measure(ReadOnlySpan<float> weights, int outputs, int inputs)
    {
        int slices = (outputs + SliceOutputs - 1) / SliceOutputs, blocksPerRow = (inputs + BlockInputs - 1) / BlockInputs;
        int[] steps = new int[slices * blocksPerRow];
        int nonZeros = 0;
        for (int o = 0; o < outputs; o++)
        {
            var row = weights.Slice(o * inputs, inputs);
            for (int block = 0; block < blocksPerRow; block++)
            {
                var part = row.Slice(block * BlockInputs, Math.Min(BlockInputs, inputs - block * BlockInputs));
                int count = part.Length - part.Count(0f);
                nonZeros += count;
                ref int slot = ref steps[o / SliceOutputs * blocksPerRow + block];
                slot = Math.Max(slot, count);
            }
        }
        long totalSteps = 0;
        int usedBlocks = 0;
        foreach (int count in steps)
        {
            totalSteps += count;
            if (count > 0) usedBlocks++;
        }
        return (steps, nonZeros, totalSteps, usedBlocks);
    }

    private PermutedSparseRows(ReadOnlySpan<float> weights, int outputs, int inputs, (int[] Steps, int NonZeros, long TotalSteps, int UsedBlocks) layout)
    {
        int slices = (outputs + SliceOutputs - 1) / SliceOutputs, blocksPerRow = (inputs + BlockInputs - 1) / BlockInputs;
        int[] steps = layout.Steps;
        // Pass 2: the block list and the entries, slice after slice.
        int[] sliceBlocks = GC.AllocateArray<int>(slices + 1, pinned: true), sliceSteps = GC.AllocateArray<int>(slices + 1, pinned: true);
        int[] blocks = GC.AllocateArray<int>(Math.Max(1, layout.UsedBlocks), pinned: true);
        byte[] offsets = GC.AllocateArray<byte>(checked((int)(layout.TotalSteps * SliceOutputs)), pinned: true);
        float[] values = GC.AllocateArray<float>(offsets.Length, pinned: true);
        offsets.AsSpan().Fill(Padding);
        int used = 0;
        long step = 0;
        for (int s = 0; s < slices; s++)
        {
            sliceBlocks[s] = used;
            sliceSteps[s] = checked((int)step);
            for (int block = 0; block < blocksPerRow; block++)
            {
                int count = steps[s * blocksPerRow + block];
                if (count == 0) continue;
                blocks[used++] = block | count << 16;
                for (int lane = 0, o = s * SliceOutputs; lane < SliceOutputs && o < outputs; lane++, o++)
                {
                    long at = step * SliceOutputs + lane;
                    for (int i = block * BlockInputs, last = Math.Min(inputs, i + BlockInputs); i < last; i++)
                    {
                        float value = weights[o * inputs + i];
                        if (value == 0f) continue;
                        offsets[at] = (byte)(i - block * BlockInputs);
                        values[at] = value;
                        at += SliceOutputs;
                    }
                }
                step += count;
            }
        }
        sliceBlocks[slices] = used;
        sliceSteps[slices] = checked((int)step);
        Inputs = inputs;
        (_sliceBlocks, _sliceSteps, _blocks, _offsets, _values) = (sliceBlocks, sliceSteps, blocks, offsets, values);
        NonZeroCount = layout.NonZeros;
    }

    /// <summary>The length of the input vector.</summary>
    public int Inputs { get; }

    /// <summary>slices + 1 offsets into <see cref="Blocks"/>: slice s reads blocks [SliceBlocks[s], SliceBlocks[s + 1]).</summary>
    public int* SliceBlocks => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sliceBlocks));

    /// <summary>slices + 1 step offsets: slice s's entries start at SliceSteps[s] * <see cref="SliceOutputs"/>.</summary>
    public int* SliceSteps => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sliceSteps));

    /// <summary>Per stored block: its index in the row (low 16 bits) and its steps (high 16 bits).</summary>
    public int* Blocks => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_blocks));

    /// <summary>Each entry's input offset in its block, <see cref="Padding"/> for none.</summary>
    public byte* Offsets => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_offsets));

    /// <summary>Each entry's weight, 0 for padding.</summary>
    public float* Values => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_values));

    /// <summary>Entries stored, padding included (16 per step).</summary>
    public long StoredEntries => _offsets.LongLength;

    /// <summary>Stored nonzeros (padding not counted).</summary>
    public int NonZeroCount { get; }
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
