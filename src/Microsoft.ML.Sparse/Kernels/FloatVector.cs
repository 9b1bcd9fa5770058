using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// One SIMD width as a type, so each kernel is written once as a generic method and the JIT specialises it per width
/// (the runtime's own ISimdVector is not public in .NET 10).
/// </summary>
internal unsafe interface IFloatVector<TSelf> where TSelf : struct, IFloatVector<TSelf>
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }
    static abstract TSelf Load(float* source);
    static abstract TSelf Broadcast(float value);
    static abstract TSelf Zero { get; }
    void Store(float* destination);
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf addend);
    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    static abstract TSelf Max(TSelf a, TSelf b);
    static abstract TSelf Min(TSelf a, TSelf b);
    static abstract TSelf Exp(TSelf x);
    /// <summary>
    /// <c>value * 2^exponent</c> for integral <paramref name="exponent"/> in [-252, 254], rounded once where the hardware has
    /// vscalefps (AVX-512) and through two exact power-of-two factors otherwise: overflows to infinity and underflows to
    /// zero like the true product, where building 2^n in the exponent bits would wrap.
    /// </summary>
    static abstract TSelf ScaleByPowerOfTwo(TSelf value, TSelf exponent);
    /// <summary>Sum of the lanes.</summary>
    float Sum();
    /// <summary>
    /// <c>source[indices[lane]]</c> in each lane, and 0 where the index is negative (that lane reads nothing): sparse
    /// kernels pad short rows with index -1, so an infinite or NaN input never meets a padding weight of 0.
    /// </summary>
    static abstract TSelf GatherOrZero(float* source, int* indices);
}

internal readonly unsafe struct Scalar : IFloatVector<Scalar>
{
    private readonly float _v;
    private Scalar(float v) => _v = v;
    public static int Count => 1;
    public static Scalar Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar Load(float* source) => new(*source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar Broadcast(float value) => new(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* destination) => *destination = _v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar MultiplyAdd(Scalar a, Scalar b, Scalar addend) => new(MathF.FusedMultiplyAdd(a._v, b._v, addend._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar operator +(Scalar a, Scalar b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar operator -(Scalar a, Scalar b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar operator *(Scalar a, Scalar b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar operator /(Scalar a, Scalar b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar Max(Scalar a, Scalar b) => new(MathF.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar Min(Scalar a, Scalar b) => new(MathF.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar Exp(Scalar x) => new(MathF.Exp(x._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar ScaleByPowerOfTwo(Scalar value, Scalar exponent) =>
        new(MathF.ScaleB(value._v, (int)exponent._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public float Sum() => _v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Scalar GatherOrZero(float* source, int* indices) =>
        new(*indices < 0 ? 0f : source[*indices]);
}

internal readonly unsafe struct Float128 : IFloatVector<Float128>
{
    private readonly Vector128<float> _v;
    private Float128(Vector128<float> v) => _v = v;
    public static int Count => Vector128<float>.Count;
    public static Float128 Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 Load(float* source) => new(Vector128.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 Broadcast(float value) => new(Vector128.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* destination) => _v.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 MultiplyAdd(Float128 a, Float128 b, Float128 addend) => new(Vector128.FusedMultiplyAdd(a._v, b._v, addend._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 operator +(Float128 a, Float128 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 operator -(Float128 a, Float128 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 operator *(Float128 a, Float128 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 operator /(Float128 a, Float128 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 Max(Float128 a, Float128 b) => new(Vector128.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 Min(Float128 a, Float128 b) => new(Vector128.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 Exp(Float128 x) => new(Vector128.Exp(x._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 ScaleByPowerOfTwo(Float128 value, Float128 exponent)
    {
        if (Avx512F.VL.IsSupported) return new(Avx512F.VL.Scale(value._v, exponent._v));
        // 2^a * 2^b with a, b in the normal exponent range, each built in the exponent bits (exact products but the last).
        Vector128<float> a = Vector128.Min(Vector128.Max(exponent._v, Vector128.Create(-126f)), Vector128.Create(127f)), b = exponent._v - a;
        return new(value._v * PowerOfTwo(a) * PowerOfTwo(b));

        static Vector128<float> PowerOfTwo(Vector128<float> n) =>
            Vector128.ShiftLeft(Vector128.ConvertToInt32(n) + Vector128.Create(127), 23).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public float Sum() => Vector128.Sum(_v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float128 GatherOrZero(float* source, int* indices) => new(Gather(source, indices));

    /// <summary>The masked hardware gather where AVX2 has one; four checked loads elsewhere (Arm has no gather).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Gather(float* source, int* indices)
    {
        if (Avx2.IsSupported)
        {
            Vector128<int> index = Vector128.Load(indices);
            return Avx2.GatherMaskVector128(Vector128<float>.Zero, source, index,
                Vector128.GreaterThanOrEqual(index, Vector128<int>.Zero).AsSingle(), sizeof(float));
        }
        return Vector128.Create(Scalar.GatherOrZero(source, indices).Sum(), Scalar.GatherOrZero(source, indices + 1).Sum(),
            Scalar.GatherOrZero(source, indices + 2).Sum(), Scalar.GatherOrZero(source, indices + 3).Sum());
    }
}

internal readonly unsafe struct Float256 : IFloatVector<Float256>
{
    private readonly Vector256<float> _v;
    private Float256(Vector256<float> v) => _v = v;
    public static int Count => Vector256<float>.Count;
    public static Float256 Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 Load(float* source) => new(Vector256.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 Broadcast(float value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* destination) => _v.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 MultiplyAdd(Float256 a, Float256 b, Float256 addend) => new(Vector256.FusedMultiplyAdd(a._v, b._v, addend._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 operator +(Float256 a, Float256 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 operator -(Float256 a, Float256 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 operator *(Float256 a, Float256 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 operator /(Float256 a, Float256 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 Max(Float256 a, Float256 b) => new(Vector256.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 Min(Float256 a, Float256 b) => new(Vector256.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 Exp(Float256 x) => new(Vector256.Exp(x._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 ScaleByPowerOfTwo(Float256 value, Float256 exponent)
    {
        if (Avx512F.VL.IsSupported) return new(Avx512F.VL.Scale(value._v, exponent._v));
        // As Float128's fallback.
        Vector256<float> a = Vector256.Min(Vector256.Max(exponent._v, Vector256.Create(-126f)), Vector256.Create(127f)), b = exponent._v - a;
        return new(value._v * PowerOfTwo(a) * PowerOfTwo(b));

        static Vector256<float> PowerOfTwo(Vector256<float> n) =>
            Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public float Sum() => Vector256.Sum(_v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float256 GatherOrZero(float* source, int* indices) => new(Gather(source, indices));

    /// <summary>As <see cref="Float128.Gather"/>, eight lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Gather(float* source, int* indices)
    {
        if (Avx2.IsSupported)
        {
            Vector256<int> index = Vector256.Load(indices);
            return Avx2.GatherMaskVector256(Vector256<float>.Zero, source, index,
                Vector256.GreaterThanOrEqual(index, Vector256<int>.Zero).AsSingle(), sizeof(float));
        }
        return Vector256.Create(Float128.Gather(source, indices), Float128.Gather(source, indices + 4));
    }
}

internal readonly unsafe struct Float512 : IFloatVector<Float512>
{
    private readonly Vector512<float> _v;
    private Float512(Vector512<float> v) => _v = v;
    public static int Count => Vector512<float>.Count;
    public static Float512 Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 Load(float* source) => new(Vector512.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 Broadcast(float value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public void Store(float* destination) => _v.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 MultiplyAdd(Float512 a, Float512 b, Float512 addend) => new(Vector512.FusedMultiplyAdd(a._v, b._v, addend._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 operator +(Float512 a, Float512 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 operator -(Float512 a, Float512 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 operator *(Float512 a, Float512 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 operator /(Float512 a, Float512 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 Max(Float512 a, Float512 b) => new(Vector512.Max(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 Min(Float512 a, Float512 b) => new(Vector512.Min(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 Exp(Float512 x) => new(Vector512.Exp(x._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 ScaleByPowerOfTwo(Float512 value, Float512 exponent) =>
        new(Avx512F.Scale(value._v, exponent._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public float Sum() => Vector512.Sum(_v);
    /// <summary>Two 256-bit gathers: .NET 10 exposes no 512-bit one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Float512 GatherOrZero(float* source, int* indices) =>
        new(Vector512.Create(Float256.Gather(source, indices), Float256.Gather(source, indices + 8)));
}

/// <summary>Which kernels may use AVX-512's masked loads and stores.</summary>
internal static class MaskedVector
{
    /// <summary>Whether <typeparamref name="TVec"/> is the AVX-512 vector on a CPU that runs it (a constant once jitted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Supported<TVec>() where TVec : struct, IFloatVector<TVec> => typeof(TVec) == typeof(Float512) && Avx512F.IsSupported;
}
