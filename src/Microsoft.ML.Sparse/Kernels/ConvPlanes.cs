using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>Shape arithmetic of one 2-D convolution window over a CHW plane.</summary>
internal readonly record struct ConvGeometry(int InHeight, int InWidth, int KernelHeight, int KernelWidth, int StrideHeight, int StrideWidth, Padding Pad)
{
    public int PaddedHeight => InHeight + Pad.Top + Pad.Bottom;
    public int PaddedWidth => InWidth + Pad.Left + Pad.Right;
    public int OutHeight => (PaddedHeight - KernelHeight) / StrideHeight + 1;
    public int OutWidth => (PaddedWidth - KernelWidth) / StrideWidth + 1;
    public int Taps => KernelHeight * KernelWidth;

    /// <summary>Columns of one phase plane: padded column <c>j * StrideWidth + phase</c> lands at column j.</summary>
    public int PhaseWidth => (PaddedWidth + StrideWidth - 1) / StrideWidth;

    /// <summary>Floats of the padded phase planes of one input channel.</summary>
    public int PlaneFloats => StrideWidth * PaddedHeight * PhaseWidth;

    /// <summary>Scratch for the phase planes of <paramref name="channels"/> input channels plus one padded row.</summary>
    public int ScratchFloats(int channels) => channels * PlaneFloats + PaddedWidth;
}

/// <summary>
/// Copies an input channel into zero-padded "phase planes" so that every convolution tap becomes a contiguous row:
/// for stride s the padded row is split into s planes (plane q holds padded columns q, q+s, q+2s, ...), so output
/// column ox of tap kx reads plane (kx % s) at column ox + kx / s. Borders and strides then need no special case.
/// </summary>
internal static unsafe class ConvPlanes
{
    /// <summary>Writes the phase planes of one CHW input channel to <paramref name="planes"/>; <paramref name="rowScratch"/> holds PaddedWidth floats.</summary>
    public static void Build(float* channel, in ConvGeometry g, float* planes, float* rowScratch)
    {
        int paddedWidth = g.PaddedWidth, phaseWidth = g.PhaseWidth, stride = g.StrideWidth;
        for (int r = 0; r < g.PaddedHeight; r++)
        {
            // Stride 1 has a single plane, so the padded row is written in place.
            float* row = stride == 1 ? planes + (long)r * phaseWidth : rowScratch;
            int y = r - g.Pad.Top;
            if (y < 0 || y >= g.InHeight)
            {
                new Span<float>(row, paddedWidth).Clear();
            }
            else
            {
                new Span<float>(row, g.Pad.Left).Clear();
                new ReadOnlySpan<float>(channel + (long)y * g.InWidth, g.InWidth).CopyTo(new Span<float>(row + g.Pad.Left, g.InWidth));
                new Span<float>(row + g.Pad.Left + g.InWidth, g.Pad.Right).Clear();
            }
            if (stride == 1) continue;
            long planeFloats = (long)g.PaddedHeight * phaseWidth;
            float* destination = planes + (long)r * phaseWidth;
            if (stride == 2) Deinterleave(row, paddedWidth, destination, destination + planeFloats);
            else SplitPhases(row, paddedWidth, stride, destination, planeFloats);
        }
    }

    /// <summary>General stride: plane q, column j = row[j * stride + q]; columns past the row are zero.</summary>
    private static void SplitPhases(float* row, int length, int stride, float* destination, long planeFloats)
    {
        int phaseWidth = (length + stride - 1) / stride;
        for (int q = 0; q < stride; q++)
        {
            float* plane = destination + q * planeFloats;
            for (int j = 0; j < phaseWidth; j++)
            {
                int column = j * stride + q;
                plane[j] = column < length ? row[column] : 0f;
            }
        }
    }

    /// <summary>Stride 2: even columns to <paramref name="even"/>, odd ones to <paramref name="odd"/> (a trailing odd slot becomes 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Deinterleave(float* row, int length, float* even, float* odd)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            Vector512<int> evenIndex = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            Vector512<int> oddIndex = evenIndex + Vector512<int>.One;
            for (; i + 32 <= length; i += 32)
            {
                Vector512<float> a = Vector512.Load(row + i), b = Vector512.Load(row + i + 16);
                Avx512F.PermuteVar16x32x2(a, evenIndex, b).Store(even + i / 2);
                Avx512F.PermuteVar16x32x2(a, oddIndex, b).Store(odd + i / 2);
            }
        }
        else if (Avx2.IsSupported)
        {
            for (; i + 16 <= length; i += 16)
            {
                Vector256<float> a = Vector256.Load(row + i), b = Vector256.Load(row + i + 8);
                // Shuffle picks even (odd) lanes within each 128-bit half; Permute4x64 then orders the halves.
                Avx2.Permute4x64(Avx.Shuffle(a, b, 0b10_00_10_00).AsDouble(), 0b11_01_10_00).AsSingle().Store(even + i / 2);
                Avx2.Permute4x64(Avx.Shuffle(a, b, 0b11_01_11_01).AsDouble(), 0b11_01_10_00).AsSingle().Store(odd + i / 2);
            }
        }
        for (; i < length; i += 2)
        {
            even[i / 2] = row[i];
            odd[i / 2] = i + 1 < length ? row[i + 1] : 0f;
        }
    }

    /// <summary>
    /// Points <paramref name="taps"/>[t] at the source row of tap t for output row <paramref name="outputRow"/>, taps ordered
    /// (channel, ky, kx) like OIHW weights, over <paramref name="channels"/> consecutive channels' planes.
    /// </summary>
    public static void FillTaps(float** taps, float* planes, in ConvGeometry g, int channels, int outputRow)
    {
        long phaseFloats = (long)g.PaddedHeight * g.PhaseWidth;
        int t = 0;
        for (int c = 0; c < channels; c++)
        {
            float* channelPlanes = planes + c * (long)g.PlaneFloats;
            for (int ky = 0; ky < g.KernelHeight; ky++)
            {
                long rowOffset = (long)(outputRow * g.StrideHeight + ky) * g.PhaseWidth;
                for (int kx = 0; kx < g.KernelWidth; kx++)
                    taps[t++] = channelPlanes + (kx % g.StrideWidth) * phaseFloats + rowOffset + kx / g.StrideWidth;
            }
        }
    }
}

/// <summary>The inner loops shared by the direct and depthwise convolutions: one output row as a sum over taps.</summary>
internal static unsafe class TapRow
{
    /// <summary>
    /// <c>output[x] = activation(bias + sum_t weights[t] * taps[t][x])</c> for x in [0, width): vectors, then a scalar tail
    /// through the same code with <see cref="Scalar"/>.
    /// </summary>
    public static void Run<TVec>(float** taps, int tapCount, float* weights, float bias, float* output, int width, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        int x = tapCount == 9 ? Run3x3<TVec>(taps, weights, bias, output, 0, width, activation) : RunGeneral<TVec>(taps, tapCount, weights, bias, output, 0, width, activation);
        if (x < width) RunGeneral<Scalar>(taps, tapCount, weights, bias, output, x, width, activation);
    }

    /// <summary>Any tap count; two vectors per step so each weight broadcast and tap pointer serves two FMAs.</summary>
    private static int RunGeneral<TVec>(float** taps, int tapCount, float* weights, float bias, float* output, int x, int width, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        int n = TVec.Count;
        for (; x + 2 * n <= width; x += 2 * n)
        {
            TVec a0 = TVec.Broadcast(bias), a1 = a0;
            for (int t = 0; t < tapCount; t++)
            {
                TVec w = TVec.Broadcast(weights[t]);
                float* source = taps[t] + x;
                a0 = TVec.MultiplyAdd(TVec.Load(source), w, a0);
                a1 = TVec.MultiplyAdd(TVec.Load(source + n), w, a1);
            }
            VectorActivation.Apply(a0, activation).Store(output + x);
            VectorActivation.Apply(a1, activation).Store(output + x + n);
        }
        for (; x + n <= width; x += n)
        {
            TVec a = TVec.Broadcast(bias);
            for (int t = 0; t < tapCount; t++) a = TVec.MultiplyAdd(TVec.Load(taps[t] + x), TVec.Broadcast(weights[t]), a);
            VectorActivation.Apply(a, activation).Store(output + x);
        }
        return x;
    }

    /// <summary>3x3 (nine taps) with the weights held in registers; the same summation order as <see cref="RunGeneral"/>.</summary>
    private static int Run3x3<TVec>(float** taps, float* weights, float bias, float* output, int x, int width, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        float* t0 = taps[0], t1 = taps[1], t2 = taps[2], t3 = taps[3], t4 = taps[4], t5 = taps[5], t6 = taps[6], t7 = taps[7], t8 = taps[8];
        TVec w0 = TVec.Broadcast(weights[0]), w1 = TVec.Broadcast(weights[1]), w2 = TVec.Broadcast(weights[2]);
        TVec w3 = TVec.Broadcast(weights[3]), w4 = TVec.Broadcast(weights[4]), w5 = TVec.Broadcast(weights[5]);
        TVec w6 = TVec.Broadcast(weights[6]), w7 = TVec.Broadcast(weights[7]), w8 = TVec.Broadcast(weights[8]);
        TVec b = TVec.Broadcast(bias);
        for (; x + TVec.Count <= width; x += TVec.Count)
        {
            TVec a = TVec.MultiplyAdd(TVec.Load(t0 + x), w0, b);
            a = TVec.MultiplyAdd(TVec.Load(t1 + x), w1, a);
            a = TVec.MultiplyAdd(TVec.Load(t2 + x), w2, a);
            a = TVec.MultiplyAdd(TVec.Load(t3 + x), w3, a);
            a = TVec.MultiplyAdd(TVec.Load(t4 + x), w4, a);
            a = TVec.MultiplyAdd(TVec.Load(t5 + x), w5, a);
            a = TVec.MultiplyAdd(TVec.Load(t6 + x), w6, a);
            a = TVec.MultiplyAdd(TVec.Load(t7 + x), w7, a);
            a = TVec.MultiplyAdd(TVec.Load(t8 + x), w8, a);
            VectorActivation.Apply(a, activation).Store(output + x);
        }
        return x;
    }

    /// <summary>
    /// Four output channels at once (weights rows 0..3 are <paramref name="tapCount"/> apart, outputs <paramref name="outputStride"/> apart):
    /// each loaded input vector feeds four FMAs. Same per-output summation order as <see cref="Run{TVec}"/>'s general path.
    /// </summary>
    public static void RunFour<TVec>(float** taps, int tapCount, float* weights, float* bias, float* output, long outputStride, int width, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        int x = RunFourCore<TVec>(taps, tapCount, weights, bias, output, outputStride, 0, width, activation);
        if (x < width) RunFourCore<Scalar>(taps, tapCount, weights, bias, output, outputStride, x, width, activation);
    }

    private static int RunFourCore<TVec>(float** taps, int tapCount, float* weights, float* bias, float* output, long outputStride, int x, int width, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        float* w1 = weights + tapCount, w2 = w1 + tapCount, w3 = w2 + tapCount;
        for (; x + TVec.Count <= width; x += TVec.Count)
        {
            TVec a0 = TVec.Broadcast(bias[0]), a1 = TVec.Broadcast(bias[1]), a2 = TVec.Broadcast(bias[2]), a3 = TVec.Broadcast(bias[3]);
            for (int t = 0; t < tapCount; t++)
            {
                TVec v = TVec.Load(taps[t] + x);
                a0 = TVec.MultiplyAdd(v, TVec.Broadcast(weights[t]), a0);
                a1 = TVec.MultiplyAdd(v, TVec.Broadcast(w1[t]), a1);
                a2 = TVec.MultiplyAdd(v, TVec.Broadcast(w2[t]), a2);
                a3 = TVec.MultiplyAdd(v, TVec.Broadcast(w3[t]), a3);
            }
            VectorActivation.Apply(a0, activation).Store(output + x);
            VectorActivation.Apply(a1, activation).Store(output + outputStride + x);
            VectorActivation.Apply(a2, activation).Store(output + 2 * outputStride + x);
            VectorActivation.Apply(a3, activation).Store(output + 3 * outputStride + x);
        }
        return x;
    }
}
