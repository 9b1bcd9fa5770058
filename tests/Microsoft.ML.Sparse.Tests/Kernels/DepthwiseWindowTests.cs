using Microsoft.ML.Sparse.Kernels;
using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>
/// <see cref="DepthwiseConvKernel"/> called directly at every SIMD width against the scalar reference, on planes that take
/// every path (1x1 to 120x120, odd and non-square, rows narrower than, equal to and many times a vector), 3x3 and 5x5,
/// strides 1 and 2, asymmetric padding, every activation, and inputs with special values.
/// </summary>
public sealed class DepthwiseWindowTests
{
    /// <summary>Every activation, with parameters where it has them.</summary>
    public static readonly Activation[] Activations =
    [
        Activation.None, Activation.Relu, Activation.Relu6, Activation.Clip(-0.5f, 0.25f), Activation.HardSigmoid(0.3f, 0.4f),
        Activation.HardSwish, Activation.Sigmoid, Activation.Swish,
    ];

    /// <summary>Plane heights and widths: every path's bounds (7, 8, 14, 16, 64, 128 columns of output, one past, one short) and odd sizes.</summary>
    private static readonly int[] Sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 23, 27, 28, 29, 31, 32, 33, 35, 47, 56, 57, 63, 64, 65, 97, 112, 113, 120];

    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    public void EveryPlaneSize_MatchesReference_AtEveryWidth(int kernel, int stride)
    {
        var random = new Random(kernel * 100 + stride);
        for (int i = 0; i < Sizes.Length; i++)
        {
            // Square planes, and each size against another (non-square) one; random asymmetric padding below the kernel.
            foreach (int width in new[] { Sizes[i], Sizes[(i * 7 + 3) % Sizes.Length] })
            {
                int height = Sizes[i];
                var pad = new Padding(random.Next(kernel), random.Next(kernel), random.Next(kernel), random.Next(kernel));
                if (height + pad.Top + pad.Bottom < kernel || width + pad.Left + pad.Right < kernel) pad = Padding.Uniform(kernel - 1);
                Activation activation = Activations[random.Next(Activations.Length)];
                Check(random, channels: 1 + random.Next(5), height, width, kernel, stride, pad, activation, specialValues: false);
            }
        }
    }

    /// <summary>The "same" paddings of MobileNet-family layers (k / 2 each side, or TF's SAME_UPPER at stride 2) with every activation.</summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    public void SamePadding_EveryActivation_MatchesReference(int kernel, int stride)
    {
        var random = new Random(1000 + kernel * 10 + stride);
        foreach (int size in new[] { 7, 9, 12, 14, 19, 28, 38, 56, 75, 112 })
            foreach (Activation activation in Activations)
            {
                Padding pad = stride == 1 || size % 3 == 0 ? Padding.Uniform(kernel / 2) : Padding.SameUpper(size, size, kernel, kernel, stride, stride);
                Check(random, channels: 3, size, size, kernel, stride, pad, activation, specialValues: false);
            }
    }

    /// <summary>NaN and infinities in the input propagate to exactly the outputs whose windows hold them, on every path.</summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    public void SpecialValues_PropagateAsInTheReference(int kernel, int stride)
    {
        var random = new Random(2000 + kernel * 10 + stride);
        foreach (int size in new[] { 5, 7, 9, 14, 15, 28, 33, 56 })
            Check(random, channels: 3, size, size + 1, kernel, stride, new Padding(kernel / 2, kernel / 2, kernel / 2 - size % 2, kernel / 2), Activation.None, specialValues: true);
    }

    /// <summary>
    /// Planes whose output rows fit in half a vector (7x7, 14x14 at stride 2, 4x4 to 8x8), and 5x5 stride-1 rows up to 32
    /// wide in segments, run 16 channels to a block in vector lanes: channel counts around the block size, so the last
    /// block is partial, at every width.
    /// </summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    public void SmallPlanes_ChannelCountsAroundTheLaneBlock_MatchReference(int kernel, int stride)
    {
        var random = new Random(3000 + kernel * 10 + stride);
        foreach (int channels in new[] { 15, 16, 17, 33 })
            foreach (int size in new[] { 4, 6, 7, 8, 13, 14, 16, 17, 23, 28, 32, 33 })
            {
                var pad = new Padding(random.Next(kernel), random.Next(kernel), random.Next(kernel), random.Next(kernel));
                int width = size + random.Next(2);
                if (size + pad.Top + pad.Bottom < kernel || width + pad.Left + pad.Right < kernel) pad = Padding.Uniform(kernel / 2);
                Check(random, channels, size, width, kernel, stride, pad, Activations[random.Next(Activations.Length)], specialValues: false);
            }
    }

    /// <summary>
    /// A thread's share of a layer is a range of channels that need not start or end on a lane block: each range writes
    /// exactly its channels, with the bits of the whole layer's run.
    /// </summary>
    [Theory]
    [InlineData(7, 7, 3, 1)]
    [InlineData(7, 7, 5, 1)]
    [InlineData(14, 14, 3, 2)]
    [InlineData(14, 14, 5, 2)]
    [InlineData(14, 14, 5, 1)]
    [InlineData(28, 28, 5, 1)]
    [InlineData(56, 56, 3, 1)]
    public unsafe void ChannelRanges_WriteOnlyTheirChannels_WithTheWholeLayersBits(int height, int width, int kernel, int stride)
    {
        const int channels = 40;
        var random = new Random(height * 100 + kernel * 10 + stride);
        var g = new ConvGeometry(height, width, kernel, kernel, stride, stride, Padding.Uniform(kernel / 2));
        int planeOut = g.OutHeight * g.OutWidth;
        float[] input = ScalarReference.Random(random, channels * height * width), w = ScalarReference.Random(random, channels * kernel * kernel),
            b = ScalarReference.Random(random, channels);
        foreach (SimdWidth simd in SimdSupport.Available)
        {
            float[] whole = Run(simd, input, w, b, g, channels, Activation.Relu6);
            foreach ((int start, int end) in new[] { (0, 1), (1, 16), (3, 20), (15, 16), (16, 32), (17, 18), (31, 40), (33, 40) })
            {
                float[] output = new float[channels * planeOut], scratch = new float[DepthwiseConvKernel.ScratchFloats(g)];
                Array.Fill(output, 12345f);
                Array.Fill(scratch, float.NaN);
                fixed (float* ip = input, wp = w, bp = b, op = output, sp = scratch)
                    RunRange(simd, ip, op, wp, bp, g, start, end, sp);
                for (int c = 0; c < channels; c++)
                {
                    Span<float> plane = output.AsSpan(c * planeOut, planeOut);
                    if (c >= start && c < end)
                        Assert.True(plane.SequenceEqual(whole.AsSpan(c * planeOut, planeOut)), $"{simd} [{start}, {end}): channel {c} differs from the whole run");
                    else Assert.True(plane.ToArray().All(v => v == 12345f), $"{simd} [{start}, {end}) wrote channel {c}");
                }
            }
        }
    }

    private static unsafe void RunRange(SimdWidth simd, float* input, float* output, float* weights, float* bias, in ConvGeometry g, int start, int end, float* scratch)
    {
        switch (simd)
        {
            case SimdWidth.Vector512: DepthwiseConvKernel.Run<Float512>(input, output, weights, bias, g, start, end, Activation.Relu6, scratch); break;
            case SimdWidth.Vector256: DepthwiseConvKernel.Run<Float256>(input, output, weights, bias, g, start, end, Activation.Relu6, scratch); break;
            case SimdWidth.Vector128: DepthwiseConvKernel.Run<Float128>(input, output, weights, bias, g, start, end, Activation.Relu6, scratch); break;
            default: DepthwiseConvKernel.Run<Scalar>(input, output, weights, bias, g, start, end, Activation.Relu6, scratch); break;
        }
    }

    private static unsafe void Check(Random random, int channels, int height, int width, int kernel, int stride, Padding pad, Activation activation, bool specialValues)
    {
        var g = new ConvGeometry(height, width, kernel, kernel, stride, stride, pad);
        float[] input = ScalarReference.Random(random, channels * height * width), w = ScalarReference.Random(random, channels * kernel * kernel),
            b = ScalarReference.Random(random, channels);
        if (specialValues)
            for (int i = 0; i < input.Length; i += 1 + random.Next(40)) input[i] = (i % 3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity };
        float[] expected = ScalarReference.Conv(input, channels, height, width, w, b, channels, kernel, kernel, stride, stride, pad, channels, activation);
        string what = $"depthwise {kernel}x{kernel} s{stride} {height}x{width} {pad} {activation} x{channels}";
        bool exact = activation.Kind is ActivationKind.None or ActivationKind.Relu or ActivationKind.Clip;
        float[]? first = null;
        foreach (SimdWidth simd in SimdSupport.Available)
        {
            float[] actual = Run(simd, input, w, b, g, channels, activation);
            if (specialValues) SameSpecialValues(expected, actual, $"{what}, {simd}");
            else EngineAssert.Close(expected, actual, 1e-5, $"{what}, {simd}");
            // Every path sums bias, then taps in (ky, kx) order with fused multiply-adds: the same bits at every width.
            if (exact && first != null) Assert.True(first.AsSpan().SequenceEqual(actual), $"{what}: {simd} differs bitwise from {SimdSupport.Available[0]}");
            first ??= actual;
        }
    }

    /// <summary>Runs the kernel over all channels; the output has one vector of guard floats that must stay untouched.</summary>
    internal static unsafe float[] Run(SimdWidth simd, float[] input, float[] weights, float[] bias, in ConvGeometry g, int channels, Activation activation)
    {
        const int guard = 16;
        int outputs = channels * g.OutHeight * g.OutWidth;
        float[] output = new float[outputs + guard], scratch = new float[DepthwiseConvKernel.ScratchFloats(g)];
        Array.Fill(output, 12345f);
        // Scratch is shared with other layers in a network: kernels must not rely on finding it zero.
        Array.Fill(scratch, float.NaN);
        fixed (float* ip = input, wp = weights, bp = bias, op = output, sp = scratch)
        {
            switch (simd)
            {
                case SimdWidth.Vector512: DepthwiseConvKernel.Run<Float512>(ip, op, wp, bp, g, 0, channels, activation, sp); break;
                case SimdWidth.Vector256: DepthwiseConvKernel.Run<Float256>(ip, op, wp, bp, g, 0, channels, activation, sp); break;
                case SimdWidth.Vector128: DepthwiseConvKernel.Run<Float128>(ip, op, wp, bp, g, 0, channels, activation, sp); break;
                default: DepthwiseConvKernel.Run<Scalar>(ip, op, wp, bp, g, 0, channels, activation, sp); break;
            }
        }
        Assert.All(output[outputs..], value => Assert.Equal(12345f, value));
        return output[..outputs];
    }

    private static void SameSpecialValues(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            float e = expected[i], a = actual[i];
            if (float.IsNaN(e) || float.IsInfinity(e)) Assert.True(e.Equals(a), $"{what}: output {i} is {a}, expected {e}");
            else Assert.True(Math.Abs(a - e) <= 1e-4 * Math.Max(1, Math.Abs(e)), $"{what}: output {i} is {a}, expected {e}");
        }
    }
}
