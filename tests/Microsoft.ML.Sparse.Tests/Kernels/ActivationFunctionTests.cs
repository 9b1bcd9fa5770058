using Microsoft.ML.Sparse.Kernels;
using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>
/// The vectorized activation functions (<see cref="VectorActivation"/>, what every kernel's epilogue inlines) against the
/// exact function in double precision over the whole float range, at every SIMD width: random bit patterns (every
/// magnitude, denormals included), dense samples of the interesting range, and the special values. The error bounds are
/// the documented ones of <see cref="VectorActivation"/>.
/// </summary>
public class ActivationFunctionTests
{
    public static TheoryData<SimdWidth, ActivationKind> WidthsAndFunctions()
    {
        var data = new TheoryData<SimdWidth, ActivationKind>();
        foreach (var width in SimdSupport.Available)
            foreach (var kind in Enum.GetValues<ActivationKind>())
                data.Add(width, kind);
        return data;
    }

    [Theory]
    [MemberData(nameof(WidthsAndFunctions))]
    public void MatchesTheExactFunctionOverTheWholeFloatRange(SimdWidth width, ActivationKind kind)
    {
        var activation = kind switch
        {
            ActivationKind.Clip => Activation.Clip(-0.5f, 6f),
            ActivationKind.HardSigmoid => Activation.HardSigmoid(0.2f, 0.5f),
            _ => new Activation(kind),
        };
        float[] x = Inputs(new Random(17 + (int)kind));
        float[] y = Apply(width, x, activation);
        double worstAbsolute = 0, worstRelative = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double exact = Exact(x[i], activation);
            string what = $"{activation} at {width}: f({x[i]:R}) = {y[i]:R}, exact {exact:R}";
            if (double.IsNaN(exact) || double.IsInfinity(exact))
            {
                Assert.True(exact.Equals((double)y[i]), what);
                continue;
            }
            Assert.True(float.IsFinite(y[i]), what);
            double error = Math.Abs(y[i] - exact), magnitude = Math.Abs(exact);
            worstAbsolute = Math.Max(worstAbsolute, error);
            if (magnitude >= TinyResult) worstRelative = Math.Max(worstRelative, error / magnitude);
            if (kind == ActivationKind.Sigmoid) Assert.True(error <= VectorActivation.SigmoidAbsoluteError, what);
            if (magnitude >= TinyResult) Assert.True(error <= VectorActivation.RelativeError * magnitude, what);
            else Assert.True(error <= TinyAbsoluteError, what);
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{activation} at {width}: worst absolute {worstAbsolute:E2}, worst relative {worstRelative:E2}");
    }

    /// <summary>Below this |result| only the absolute bound holds (float loses relative precision near its denormals).</summary>
    private const double TinyResult = 1e-36;

    /// <summary>Swish of x below -88.72 is under 3e-37 and comes out as -0 (e^-x overflows in float, x / inf).</summary>
    private const double TinyAbsoluteError = 1e-36;

    [Theory]
    [MemberData(nameof(Widths))]
    public void SpecialValuesFollowTheScalarDefinition(SimdWidth width)
    {
        float[] x = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1e30f, -1e30f, 88.8f, -88.8f, 100f, -100f];
        float[] sigmoid = Apply(width, x, Activation.Sigmoid), swish = Apply(width, x, Activation.Swish);
        float[] hardSwish = Apply(width, x, Activation.HardSwish), hardSigmoid = Apply(width, x, Activation.HardSigmoid());
        Assert.Equal([float.NaN, 1f, 0f, 0.5f, 0.5f, 1f, 0f, 1f, 0f, 1f, 0f], sigmoid);
        Assert.Equal([float.NaN, float.PositiveInfinity, float.NaN, 0f, 0f, 1e30f, 0f, 88.8f, 0f, 100f, 0f], swish.Select(v => v == 0 ? 0f : v));
        Assert.Equal([float.NaN, float.PositiveInfinity, float.NaN, 0f, 0f, 1e30f, 0f, 88.8f, 0f, 100f, 0f], hardSwish.Select(v => v == 0 ? 0f : v));
        Assert.Equal([float.NaN, 1f, 0f, 0.5f, 0.5f, 1f, 0f, 1f, 0f, 1f, 0f], hardSigmoid);
    }

    public static TheoryData<SimdWidth> Widths() => new(SimdSupport.Available);

    /// <summary>
    /// The exact function in double. HardSigmoid and HardSwish take their slope as the float ONNX stores (1/6 rounded to
    /// float for HardSwish, as ONNX Runtime computes it): near x = -3 the difference to the real 1/6 is the whole result.
    /// </summary>
    private static double Exact(float x, Activation activation) => activation.Kind switch
    {
        ActivationKind.Relu => Math.Max(x, 0.0), // NaN stays NaN, as the kernels keep it
        ActivationKind.HardSwish => x * Math.Clamp(x * (double)(1f / 6f) + 0.5, 0, 1),
        ActivationKind.HardSigmoid => Math.Clamp(x * (double)activation.Alpha + activation.Beta, 0, 1),
        _ => ScalarReference.Activate(x, activation),
    };

    /// <summary>Random bit patterns (all finite floats, denormals included), dense samples of |x| &lt;= 110, decades up to 1e30, specials.</summary>
    private static float[] Inputs(Random random)
    {
        var x = new List<float>();
        for (int i = 0; i < 60_000; i++)
        {
            float bits = BitConverter.Int32BitsToSingle(random.Next() | (random.Next(2) << 31));
            if (float.IsFinite(bits)) x.Add(bits);
        }
        for (int i = 0; i < 200_000; i++) x.Add((float)(random.NextDouble() * 220 - 110));
        for (int i = 0; i < 20_000; i++) x.Add((float)(random.NextDouble() * 12 - 6));
        for (int e = -45; e <= 30; e++) x.AddRange([(float)Math.Pow(10, e), -(float)Math.Pow(10, e)]);
        x.AddRange([0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.MinValue, float.NaN, float.PositiveInfinity, float.NegativeInfinity,
            -3f, 3f, -3.0000002f, -2.9999998f, 88.7f, -88.7f, 87.3f, -87.3f, 100f, -100f, 100.5f, -100.5f, 1e-38f, -1e-38f]);
        x.Add(1f); // an odd count, so every width's scalar tail runs
        return x.ToArray();
    }

    private static unsafe float[] Apply(SimdWidth width, float[] x, Activation activation)
    {
        var y = new float[x.Length];
        fixed (float* source = x, destination = y)
        {
            switch (width)
            {
                case SimdWidth.Vector512: ActivationPass.Apply<Float512>(source, destination, x.Length, activation); break;
                case SimdWidth.Vector256: ActivationPass.Apply<Float256>(source, destination, x.Length, activation); break;
                case SimdWidth.Vector128: ActivationPass.Apply<Float128>(source, destination, x.Length, activation); break;
                default: ActivationPass.Apply<Scalar>(source, destination, x.Length, activation); break;
            }
        }
        return y;
    }
}
