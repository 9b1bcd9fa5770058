using Microsoft.ML.Sparse.Kernels;
using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>The dense GEMV over 64-output panels (classifier, SE and one-pixel 1x1 layers) against the scalar reference.</summary>
public sealed class DenseGemvTests
{
    /// <summary>
    /// Ranges start at a panel and end anywhere (inside a panel, at one, at the last output), over layers whose last panel
    /// is partly padding; every output in range matches the reference and the full run's bits, nothing outside is written,
    /// and the residual is read only in range.
    /// </summary>
    [Fact]
    public unsafe void PanelRangesMatchReferenceAndWriteOnlyTheirOutputs()
    {
        var random = new Random(21);
        foreach (SimdWidth width in SimdSupport.Available)
            foreach (int outputs in new[] { 1, 7, 16, 63, 64, 65, 130, 200 })
                for (int trial = 0; trial < 6; trial++)
                {
                    int inputs = random.Next(1, 70);
                    float[] weights = ScalarReference.Random(random, outputs * inputs);
                    float[] input = ScalarReference.Random(random, inputs), bias = ScalarReference.Random(random, outputs);
                    float[] residual = ScalarReference.Random(random, outputs), packed = FullyConnectedKernel.Pack(weights, outputs, inputs);
                    int panels = (outputs + FullyConnectedKernel.PanelOutputs - 1) / FullyConnectedKernel.PanelOutputs;
                    int start = random.Next(panels) * FullyConnectedKernel.PanelOutputs, end = random.Next(start + 1, outputs + 1);
                    bool withResidual = trial % 2 == 0;
                    float[] whole = new float[outputs], part = new float[outputs];
                    Array.Fill(part, GemvRangeAssert.Untouched);
                    for (int o = 0; o < outputs; o++)
                        if (o < start || o >= end) residual[o] = float.NaN;
                    fixed (float* x = input, w = packed, b = bias, r = residual, all = whole, some = part)
                    {
                        Run(width, x, w, b, withResidual ? r : null, some, inputs, outputs, start, end);
                        Run(width, x, w, b, withResidual ? r : null, all, inputs, outputs, start, outputs);
                    }
                    GemvRangeAssert.Matches(part, whole, weights, input, bias, withResidual ? residual : null, start, end,
                        $"{width}, {inputs} -> {outputs}, [{start}, {end})");
                }
    }

    [Fact]
    public unsafe void RangesNotStartingAtAPanelAreRefused()
    {
        float[] packed = FullyConnectedKernel.Pack(new float[100 * 3], 100, 3);
        float[] input = new float[3], bias = new float[100], output = new float[100];
        fixed (float* x = input, w = packed, b = bias, y = output)
        {
            float* px = x, pw = w, pb = b, py = y;
            Assert.Throws<ArgumentOutOfRangeException>(() => FullyConnectedKernel.Run<Scalar>(px, pw, pb, null, py, 3, 100, 16, 100, Activation.None));
        }
    }

    private static unsafe void Run(SimdWidth width, float* input, float* packed, float* bias, float* residual, float* output, int inputs, int outputs, int start, int end)
    {
        switch (width)
        {
            case SimdWidth.Vector512: FullyConnectedKernel.Run<Float512>(input, packed, bias, residual, output, inputs, outputs, start, end, Activation.None); break;
            case SimdWidth.Vector256: FullyConnectedKernel.Run<Float256>(input, packed, bias, residual, output, inputs, outputs, start, end, Activation.None); break;
            case SimdWidth.Vector128: FullyConnectedKernel.Run<Float128>(input, packed, bias, residual, output, inputs, outputs, start, end, Activation.None); break;
            default: FullyConnectedKernel.Run<Scalar>(input, packed, bias, residual, output, inputs, outputs, start, end, Activation.None); break;
        }
    }
}
