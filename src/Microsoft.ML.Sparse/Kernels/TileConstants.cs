namespace Microsoft.ML.Sparse.Kernels;

/// <summary>A compile-time integer as a type, so the generic kernels unroll by it and the JIT folds the branches.</summary>
internal interface IConstant
{
    static abstract int Value { get; }

    /// <summary>Lanes of a row tile's narrow tail after its <see cref="Value"/> whole vectors: none unless <see cref="WithTail{T}"/>.</summary>
    static virtual int TailLanes => 0;
}

/// <summary><typeparamref name="TVectors"/> whole vectors and a 4-lane tail.</summary>
internal readonly struct WithTail<TVectors> : IConstant where TVectors : struct, IConstant
{
    public static int Value => TVectors.Value;
    public static int TailLanes => 4;
}

internal readonly struct One : IConstant { public static int Value => 1; }
internal readonly struct Two : IConstant { public static int Value => 2; }
internal readonly struct Three : IConstant { public static int Value => 3; }
internal readonly struct Four : IConstant { public static int Value => 4; }
internal readonly struct Five : IConstant { public static int Value => 5; }
internal readonly struct Six : IConstant { public static int Value => 6; }
internal readonly struct Seven : IConstant { public static int Value => 7; }
internal readonly struct Eight : IConstant { public static int Value => 8; }
internal readonly struct Nine : IConstant { public static int Value => 9; }
internal readonly struct Ten : IConstant { public static int Value => 10; }
internal readonly struct Eleven : IConstant { public static int Value => 11; }
internal readonly struct Twelve : IConstant { public static int Value => 12; }
internal readonly struct Thirteen : IConstant { public static int Value => 13; }
internal readonly struct Fourteen : IConstant { public static int Value => 14; }
internal readonly struct Fifteen : IConstant { public static int Value => 15; }
internal readonly struct Sixteen : IConstant { public static int Value => 16; }
