using System.Runtime.CompilerServices;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// Applies an activation over a run of floats with the choice of function made once, outside the loop: a loop that
/// switches per vector (and may call Exp) keeps the JIT from holding a kernel's accumulators and pointers in registers,
/// so the convolution, GEMV and elementwise kernels write raw sums and finish with this pass while the data is in cache.
/// </summary>
internal static unsafe class ActivationPass
{
    /// <summary><c>destination[i] = activation(source[i])</c> for i in [0, count); the two may be the same buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply<TVec>(float* source, float* destination, int count, in Activation activation) where TVec : struct, IFloatVector<TVec>
    {
        float alpha = activation.Alpha, beta = activation.Beta;
        switch (activation.Kind)
        {
            case ActivationKind.None:
                if (source != destination) new ReadOnlySpan<float>(source, count).CopyTo(new Span<float>(destination, count));
                break;
            case ActivationKind.Relu: Loop<TVec, ReluFunction>(source, destination, count, alpha, beta); break;
            case ActivationKind.Clip: Loop<TVec, ClipFunction>(source, destination, count, alpha, beta); break;
            case ActivationKind.HardSigmoid: Loop<TVec, HardSigmoidFunction>(source, destination, count, alpha, beta); break;
            case ActivationKind.HardSwish: Loop<TVec, HardSwishFunction>(source, destination, count, alpha, beta); break;
            case ActivationKind.Sigmoid: Loop<TVec, SigmoidFunction>(source, destination, count, alpha, beta); break;
            case ActivationKind.Swish: Loop<TVec, SwishFunction>(source, destination, count, alpha, beta); break;
            default: throw Unsupported(activation);
        }
    }

    private static NotSupportedException Unsupported(in Activation activation) =>
        new($"Activation {activation.Kind} is not supported; supported: {string.Join(", ", Enum.GetNames<ActivationKind>())}.");

    /// <summary>
    /// <c>destination[r * width + x] = activation(source[r * sourcePitch + x])</c> for <paramref name="rows"/> rows: packs
    /// rows computed at a wider pitch. A row is written in whole vectors when the overhang lands on later rows (which are
    /// written afterwards), so nothing past the last row is touched; the source needs one vector of slack past its last row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ApplyRows<TVec>(float* source, int sourcePitch, float* destination, int width, int rows, in Activation activation)
        where TVec : struct, IFloatVector<TVec>
    {
        var pass = new RowsPass<TVec>(source, sourcePitch, destination, width, rows, activation.Alpha, activation.Beta);
        Dispatch(ref pass, activation);
    }

    /// <summary>Calls <paramref name="consumer"/> with the function type of <paramref name="activation"/>, chosen once for a whole kernel.</summary>
    public static void Dispatch<TConsumer>(ref TConsumer consumer, in Activation activation) where TConsumer : struct, IActivationConsumer
    {
        switch (activation.Kind)
        {
            case ActivationKind.None: consumer.Run<IdentityFunction>(); break;
            case ActivationKind.Relu: consumer.Run<ReluFunction>(); break;
            case ActivationKind.Clip: consumer.Run<ClipFunction>(); break;
            case ActivationKind.HardSigmoid: consumer.Run<HardSigmoidFunction>(); break;
            case ActivationKind.HardSwish: consumer.Run<HardSwishFunction>(); break;
            case ActivationKind.Sigmoid: consumer.Run<SigmoidFunction>(); break;
            case ActivationKind.Swish: consumer.Run<SwishFunction>(); break;
            default: throw Unsupported(activation);
        }
    }

    /// <summary>
    /// Like <see cref="Dispatch"/>, but None, Relu and Clip all run as <see cref="ClipFunction"/> with the bounds of
    /// <see cref="Parameters"/>: kernels compiled in many variants per function (the 1x1 tiles) get one for the three.
    /// </summary>
    public static void DispatchClampsAsClip<TConsumer>(ref TConsumer consumer, in Activation activation) where TConsumer : struct, IActivationConsumer
    {
        if (activation.Kind is ActivationKind.None or ActivationKind.Relu or ActivationKind.Clip) consumer.Run<ClipFunction>();
        else Dispatch(ref consumer, activation);
    }

    /// <summary>The alpha and beta to pass to the function <see cref="DispatchClampsAsClip"/> picks: None is clip(-inf, inf), Relu clip(0, inf).</summary>
    public static (float Alpha, float Beta) Parameters(in Activation activation) => activation.Kind switch
    {
        ActivationKind.None => (float.NegativeInfinity, float.PositiveInfinity),
        ActivationKind.Relu => (0f, float.PositiveInfinity),
        _ => (activation.Alpha, activation.Beta),
    };

    private readonly struct RowsPass<TVec>(float* source, int sourcePitch, float* destination, int width, int rows, float alpha, float beta)
        : IActivationConsumer where TVec : struct, IFloatVector<TVec>
    {
        public void Run<TFunction>() where TFunction : struct, IActivationFunction =>
            Rows<TVec, TFunction>(source, sourcePitch, destination, width, rows, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TVec, TFunction>(float* source, int sourcePitch, float* destination, int width, int rows, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        long wholeVectors = (width + TVec.Count - 1) / TVec.Count * TVec.Count, end = (long)rows * width;
        int r = 0;
        for (; r < rows && r * (long)width + wholeVectors <= end; r++)
        {
            float* from = source + (long)r * sourcePitch, to = destination + (long)r * width;
            for (int x = 0; x < width; x += TVec.Count) TFunction.Apply(TVec.Load(from + x), alpha, beta).Store(to + x);
        }
        for (; r < rows; r++) Loop<TVec, TFunction>(source + (long)r * sourcePitch, destination + (long)r * width, width, alpha, beta);
    }

    /// <summary>Whether a many-accumulator tile of <typeparamref name="TVec"/> applies <typeparamref name="TFunction"/> in registers (see <see cref="IActivationFunction.IsLong"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool InRegisters<TFunction, TVec>() where TFunction : struct, IActivationFunction where TVec : struct, IFloatVector<TVec> =>
        !TFunction.IsLong || typeof(TVec) == typeof(Float512);

    /// <summary>
    /// <c>data[i] = TFunction(data[i])</c> over a tile a kernel has just stored, for <see cref="IActivationFunction.IsLong"/>
    /// functions: a call of its own, made when the kernel's accumulators are dead.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ApplyStored<TVec, TFunction>(float* data, int count, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction =>
        Loop<TVec, TFunction>(data, data, count, alpha, beta);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Loop<TVec, TFunction>(float* source, float* destination, int count, float alpha, float beta)
        where TVec : struct, IFloatVector<TVec> where TFunction : struct, IActivationFunction
    {
        int i = 0;
        for (; i + TVec.Count <= count; i += TVec.Count) TFunction.Apply(TVec.Load(source + i), alpha, beta).Store(destination + i);
        for (; i < count; i++) TFunction.Apply(Scalar.Broadcast(source[i]), alpha, beta).Store(destination + i);
    }
}

/// <summary>A kernel generic over the activation function; <see cref="ActivationPass.Dispatch"/> picks the function.</summary>
internal interface IActivationConsumer
{
    void Run<TFunction>() where TFunction : struct, IActivationFunction;
}

/// <summary>
/// One activation as a type, inlined where a kernel holds its results (see <see cref="VectorActivation"/> for the functions
/// and their error bounds). Clip takes its bounds as alpha and beta, HardSigmoid its slope and offset.
/// </summary>
internal interface IActivationFunction
{
    static abstract TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec>;

    /// <summary>
    /// Whether the function is a long instruction sequence (Sigmoid, Swish: ~13 instructions). Written against the
    /// <see cref="IFloatVector{TSelf}"/> wrappers it is some thirty inlinees, and inlined once per accumulator in a
    /// 16-accumulator tile that exhausts the JIT's inlining budget, which then leaves the tile's own loads and FMAs as
    /// calls (10x slower). <see cref="VectorActivation"/> writes the Vector512 form straight on the intrinsics (one
    /// inlinee); tiles of other widths apply a long function to their stored results instead, while those are in L1
    /// (<see cref="ActivationPass.ApplyStored"/>); see <see cref="ActivationPass.InRegisters{TFunction, TVec}"/>.
    /// </summary>
    static virtual bool IsLong => false;
}

internal readonly struct IdentityFunction : IActivationFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> => x;
}

internal readonly struct ReluFunction : IActivationFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> => VectorActivation.AtLeast(x, TVec.Zero);
}

internal readonly struct ClipFunction : IActivationFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> =>
        VectorActivation.Clamp(x, TVec.Broadcast(alpha), TVec.Broadcast(beta));
}

internal readonly struct HardSigmoidFunction : IActivationFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> => VectorActivation.HardSigmoid(x, alpha, beta);
}

internal readonly struct HardSwishFunction : IActivationFunction
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> => VectorActivation.HardSwish(x);
}

internal readonly struct SigmoidFunction : IActivationFunction
{
    public static bool IsLong => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> => VectorActivation.Sigmoid(x);
}

internal readonly struct SwishFunction : IActivationFunction
{
    public static bool IsLong => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Apply<TVec>(TVec x, float alpha, float beta) where TVec : struct, IFloatVector<TVec> => VectorActivation.Swish(x);
}
