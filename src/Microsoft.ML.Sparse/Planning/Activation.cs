namespace Microsoft.ML.Sparse;

/// <summary>The kind of an elementwise activation that the engine fuses into a layer's epilogue.</summary>
public enum ActivationKind
{
    /// <summary>Identity.</summary>
    None,
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>min(max(x, Alpha), Beta); ReLU6 is Clip(0, 6).</summary>
    Clip,
    /// <summary>max(0, min(1, Alpha * x + Beta)) (ONNX HardSigmoid).</summary>
    HardSigmoid,
    /// <summary>x * max(0, min(1, x / 6 + 1 / 2)) (ONNX HardSwish).</summary>
    HardSwish,
    /// <summary>1 / (1 + exp(-x)).</summary>
    Sigmoid,
    /// <summary>x * sigmoid(x), also called SiLU.</summary>
    Swish,
}

/// <summary>An activation with its parameters, applied elementwise after a layer's bias (and residual).</summary>
/// <param name="Kind">Which function.</param>
/// <param name="Alpha">Clip minimum, or HardSigmoid slope.</param>
/// <param name="Beta">Clip maximum, or HardSigmoid offset.</param>
public readonly record struct Activation(ActivationKind Kind, float Alpha = 0f, float Beta = 0f)
{
    /// <summary>The identity.</summary>
    public static Activation None => default;

    /// <summary>max(x, 0).</summary>
    public static Activation Relu => new(ActivationKind.Relu);

    /// <summary>min(max(x, 0), 6), as MobileNets use it.</summary>
    public static Activation Relu6 => Clip(0f, 6f);

    /// <summary>x * relu6(x + 3) / 6.</summary>
    public static Activation HardSwish => new(ActivationKind.HardSwish);

    /// <summary>1 / (1 + exp(-x)).</summary>
    public static Activation Sigmoid => new(ActivationKind.Sigmoid);

    /// <summary>x * sigmoid(x) (SiLU).</summary>
    public static Activation Swish => new(ActivationKind.Swish);

    /// <summary>min(max(x, min), max).</summary>
    public static Activation Clip(float min, float max) => new(ActivationKind.Clip, min, max);

    /// <summary>max(0, min(1, alpha * x + beta)); ONNX defaults are alpha 0.2, beta 0.5.</summary>
    public static Activation HardSigmoid(float alpha = 0.2f, float beta = 0.5f) => new(ActivationKind.HardSigmoid, alpha, beta);

    /// <summary>Applies the activation to one value (the scalar definition every SIMD path must match).</summary>
    public float Apply(float x) => Kind switch
    {
        ActivationKind.None => x,
        ActivationKind.Relu => MathF.Max(x, 0f),
        ActivationKind.Clip => MathF.Min(MathF.Max(x, Alpha), Beta),
        ActivationKind.HardSigmoid => MathF.Max(0f, MathF.Min(1f, Alpha * x + Beta)),
        ActivationKind.HardSwish => x * MathF.Max(0f, MathF.Min(1f, x * (1f / 6f) + 0.5f)),
        ActivationKind.Sigmoid => 1f / (1f + MathF.Exp(-x)),
        ActivationKind.Swish => x / (1f + MathF.Exp(-x)),
        _ => throw new InvalidOperationException($"Unknown activation {Kind}."),
    };

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ActivationKind.Clip => $"Clip({Alpha}, {Beta})",
        ActivationKind.HardSigmoid => $"HardSigmoid({Alpha}, {Beta})",
        _ => Kind.ToString(),
    };
}
