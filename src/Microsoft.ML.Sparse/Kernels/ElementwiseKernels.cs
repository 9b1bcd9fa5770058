using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>A lane-wise binary operation, so one loop serves add and multiply.</summary>
internal interface IBinaryOperation
{
    static abstract TVec Apply<TVec>(TVec a, TVec b) where TVec : struct, IFloatVector<TVec>;
}

internal readonly struct AddOperation : IBinaryOperation
{
    public static TVec Apply<TVec>(TVec a, TVec b) where TVec : struct, IFloatVector<TVec> => a + b;
}

internal readonly struct MultiplyOperation : IBinaryOperation
{
    public static TVec Apply<TVec>(TVec a, TVec b) where TVec : struct, IFloatVector<TVec> => a * b;
}

/// <summary>Elementwise layers: binary operations with an activation, per-channel scaling, layout change.</summary>
internal static unsafe class ElementwiseKernels
{
    /// <summary><c>output[i] = activation(op(a[i], b[i]))</c> for i in [start, end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Binary<TVec, TOperation>(float* a, float* b, float* output, int start, int end, in Activation activation)
        where TVec : struct, IFloatVector<TVec> where TOperation : struct, IBinaryOperation
    {
        var binary = new BinaryPass<TVec, TOperation>(a, b, output, start, end, ActivationPass.Parameters(activation));
        ActivationPass.DispatchClampsAsClip(ref binary, activation);
    }

    private readonly struct BinaryPass<TVec, TOperation>(float* a, float* b, float* output, int start, int end, (float Alpha, float Beta) parameters)
        : IActivationConsumer where TVec : struct, IFloatVector<TVec> where TOperation : struct, IBinaryOperation
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction
        {
            int i = BinaryBlock<TVec, TOperation, TFunction>(a, b, output, start, end, parameters.Alpha, parameters.Beta);
            BinaryBlock<Scalar, TOperation, TFunction>(a, b, output, i, end, parameters.Alpha, parameters.Beta);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int BinaryBlock<TVec, TOperation, TFunction>(float* a, float* b, float* output, int i, int end, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TOperation : struct, IBinaryOperation where TFunction : struct, IActivationFunction
    {
        for (; i + TVec.Count <= end; i += TVec.Count)
            TFunction.Apply(TOperation.Apply(TVec.Load(a + i), TVec.Load(b + i)), alpha, beta).Store(output + i);
        return i;
    }

    /// <summary>
    /// <c>output[c, p] = input[c, p] * scale[c]</c> for channels [channelStart, channelEnd) (squeeze-and-excitation); the
    /// planes of input and output lie <paramref name="inputStride"/> and <paramref name="outputStride"/> floats apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleChannels<TVec>(float* input, int inputStride, float* scale, float* output, int outputStride, int pixels, int channelStart, int channelEnd)
        where TVec : struct, IFloatVector<TVec>
    {
        for (int c = channelStart; c < channelEnd; c++)
        {
            float* source = input + (long)c * inputStride, destination = output + (long)c * outputStride;
            int p = ScaleBlock(source, TVec.Broadcast(scale[c]), destination, 0, pixels);
            ScaleBlock(source, Scalar.Broadcast(scale[c]), destination, p, pixels);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ScaleBlock<TVec>(float* input, TVec scale, float* output, int p, int end) where TVec : struct, IFloatVector<TVec>
    {
        for (; p + TVec.Count <= end; p += TVec.Count) (TVec.Load(input + p) * scale).Store(output + p);
        return p;
    }

    /// <summary>
    /// <c>output[i] = values[i] * scale[index[i]]</c> for i in [start, end): a 1x1 layer's stored weights scaled per input
    /// channel (<see cref="Formats.PointwiseWeights.InputRowOfEachValue"/> gives the indices), eight gathered at a time.
    /// </summary>
    public static void ScaleByIndex(float* values, int* index, float* scale, float* output, int start, int end)
    {
        int i = start;
        if (Avx2.IsSupported)
            for (; i + 8 <= end; i += 8)
                (Vector256.Load(values + i) * Avx2.GatherVector256(scale, Vector256.Load(index + i), sizeof(float))).Store(output + i);
        for (; i < end; i++) output[i] = values[i] * scale[index[i]];
    }

    /// <summary>HWC to CHW for channels [channelStart, channelEnd): <c>output[c, p] = input[p, c]</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TransposeHwcToChw(float* input, float* output, int channels, int pixels, int channelStart, int channelEnd)
    {
        for (int c = channelStart; c < channelEnd; c++)
        {
            float* destination = output + (long)c * pixels;
            for (int p = 0; p < pixels; p++) destination[p] = input[(long)p * channels + c];
        }
    }

    /// <summary>
    /// <c>output[c, p] = activation(partials[0][c, p] + ... + partials[n - 1][c, p] + bias[c] + residual[c, p])</c>, summed in that
    /// order, for channels [channelStart, channelEnd) and pixels [pixelStart, pixelEnd). Partial sum j starts
    /// <paramref name="partialFloats"/> x j floats after <paramref name="partials"/>; <paramref name="residual"/> may be null.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SumPartials<TVec>(float* partials, int count, long partialFloats, int partialStride, float* bias, float* residual, int residualStride,
        float* output, int outputStride, int channelStart, int channelEnd, int pixelStart, int pixelEnd, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        for (int c = channelStart; c < channelEnd; c++)
        {
            float* source = partials + (long)c * partialStride, destination = output + (long)c * outputStride;
            float* add = residual == null ? null : residual + (long)c * residualStride;
            int p = SumPartialsBlock<TVec>(source, count, partialFloats, bias[c], add, destination, pixelStart, pixelEnd);
            SumPartialsBlock<Scalar>(source, count, partialFloats, bias[c], add, destination, p, pixelEnd);
            ActivationPass.Apply<TVec>(destination + pixelStart, destination + pixelStart, pixelEnd - pixelStart, activation);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int SumPartialsBlock<TVec>(float* source, int count, long partialFloats, float bias, float* residual, float* output, int p, int end)
        where TVec : struct, IFloatVector<TVec>
    {
        TVec biasVector = TVec.Broadcast(bias);
        for (; p + TVec.Count <= end; p += TVec.Count)
        {
            TVec sum = TVec.Load(source + p);
            for (int j = 1; j < count; j++) sum += TVec.Load(source + j * partialFloats + p);
            sum += biasVector;
            if (residual != null) sum += TVec.Load(residual + p);
            sum.Store(output + p);
        }
        return p;
    }
}
