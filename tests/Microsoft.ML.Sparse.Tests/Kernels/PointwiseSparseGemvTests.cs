using Microsoft.ML.Sparse.Kernels;
using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>The sparse GEMV (pruned classifier, SE and one-pixel 1x1 layers) against the scalar reference.</summary>
public sealed class PointwiseSparseGemvTests
{
    /// <summary>Random weights with exactly round(sparsity x count) of them, at random places, zero.</summary>
    private static float[] Pruned(Random random, int count, float sparsity)
    {
        float[] weights = ScalarReference.Random(random, count);
        int[] order = Enumerable.Range(0, count).ToArray();
        random.Shuffle(order);
        foreach (int i in order.AsSpan(0, (int)Math.Round(sparsity * count))) weights[i] = 0f;
        return weights;
    }

    /// <summary>Outputs around the 16-lane split and rows with fewer than, exactly and more than 8 nonzeros (the gather step), down to empty rows.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(9, 1, 1)]
    [InlineData(40, 1, 1)]
    [InlineData(5, 3, 2)]
    [InlineData(300, 1, 1)]
    public void FullyConnected_Sparse_MatchesReferenceAtEveryWidthAndThreadCount(int channels, int height, int width)
    {
        var random = new Random(channels * 11 + height);
        foreach (float sparsity in new[] { 0.9f, 0.97f, 1f })
            foreach (int outputs in new[] { 1, 3, 15, 16, 17, 33, 100 })
            {
                var twin = new TwinBuilder(channels, height, width);
                TensorHandle y = twin.FullyConnected(twin.Input, Pruned(random, outputs * channels * height * width, sparsity),
                    ScalarReference.Random(random, outputs), outputs, Activation.Relu6);
                string what = $"sparse FC {channels}x{height}x{width} -> {outputs} at {sparsity:P0}";
                EngineAssert.MatchesReference(twin, y, random, what);
                Assert.Contains(twin.Engine.Build(y).Layers, layer => layer.Kernel.StartsWith("sparse GEMV", StringComparison.Ordinal));
            }
    }

    [Fact]
    public void PointwiseOnOnePixel_Sparse_WithResidual_MatchesReference()
    {
        var random = new Random(12);
        var twin = new TwinBuilder(130, 1, 1);
        TensorHandle residual = twin.Activate(twin.Input, Activation.None);
        TensorHandle skip = twin.Pointwise(residual, Pruned(random, 130 * 130, 0.9f), ScalarReference.Random(random, 130), 130, Activation.None);
        TensorHandle y = twin.Pointwise(residual, Pruned(random, 130 * 130, 0.95f), [], 130, Activation.HardSwish, skip);
        EngineAssert.MatchesReference(twin, y, random, "sparse 1x1 on one pixel 130->130");
        Assert.Equal(2, twin.Engine.Build(y).Layers.Count(layer => layer.Kernel.StartsWith("sparse GEMV", StringComparison.Ordinal)));
    }

    [Fact]
    public void DenseEnoughWeightsKeepTheDenseGemv()
    {
        var random = new Random(13);
        var twin = new TwinBuilder(64, 1, 1);
        TensorHandle y = twin.FullyConnected(twin.Input, Pruned(random, 64 * 32, 0.5f), ScalarReference.Random(random, 32), 32, Activation.None);
        Assert.Contains(twin.Engine.Build(y, new SparseNetworkOptions { SparseThreshold = 0f }).Layers, layer => layer.Kernel.StartsWith("dense GEMV", StringComparison.Ordinal));
    }

    /// <summary>
    /// 90% zeros as whole output channels (a few dense rows beside empty ones): the 16-output slices would be mostly padding,
    /// so the dense GEMV runs; the same zeros spread at random keep the sparse one. Both match the reference.
    /// </summary>
    [Fact]
    public void ChannelPrunedRows_TakeTheDenseGemv()
    {
        var random = new Random(17);
        const int inputs = 64, outputs = 160;
        float[] rowPruned = ScalarReference.Random(random, outputs * inputs);
        for (int o = 0; o < outputs; o++)
            if (o % 10 != 0) Array.Clear(rowPruned, o * inputs, inputs);
        foreach ((float[] weights, string kernel) in new[] { (rowPruned, "dense GEMV"), (Pruned(random, outputs * inputs, 0.9f), "sparse GEMV") })
        {
            var twin = new TwinBuilder(inputs, 1, 1);
            TensorHandle y = twin.FullyConnected(twin.Input, weights, ScalarReference.Random(random, outputs), outputs, Activation.Sigmoid);
            Assert.Contains(twin.Engine.Build(y).Layers, layer => layer.Kernel.StartsWith(kernel, StringComparison.Ordinal));
            EngineAssert.MatchesReference(twin, y, random, $"{kernel} at 90%");
        }
    }

    /// <summary>
    /// 512-bit plans on AVX-512 take the permuted form, narrower ones the gathered form; at 75% only the permuted form pays
    /// (narrower plans keep the dense GEMV); a channel-pruned layer, whose permuted form would outweigh the dense
    /// weights, takes the dense GEMV at every width.
    /// </summary>
    [Fact]
    public void EachWidthPlansItsSparseForm()
    {
        var random = new Random(18);
        var twin = new TwinBuilder(96, 1, 1);
        TensorHandle y = twin.FullyConnected(twin.Input, Pruned(random, 96 * 40, 0.9f), ScalarReference.Random(random, 40), 40, Activation.None);
        foreach (SimdWidth width in SimdSupport.Available)
        {
            string expected = PermutedSparseRows.RunsAt(width) ? "sparse GEMV, permuted (" : "sparse GEMV (";
            Assert.StartsWith(expected, Assert.Single(twin.Engine.Build(y, new SparseNetworkOptions { MaxSimdWidth = width }).Layers).Kernel, StringComparison.Ordinal);
        }
        var quarter = new TwinBuilder(96, 1, 1);
        TensorHandle z = quarter.FullyConnected(quarter.Input, Pruned(random, 96 * 40, 0.75f), ScalarReference.Random(random, 40), 40, Activation.None);
        foreach (SimdWidth width in SimdSupport.Available)
        {
            string expected = PermutedSparseRows.RunsAt(width) ? "sparse GEMV, permuted (" : "dense GEMV (";
            Assert.StartsWith(expected, Assert.Single(quarter.Engine.Build(z, new SparseNetworkOptions { MaxSimdWidth = width }).Layers).Kernel, StringComparison.Ordinal);
        }
        EngineAssert.MatchesReference(quarter, z, random, "FC 96 -> 40 at 75%");
        // Every tenth of 160 rows dense: each slice pads one or two full rows to 16 lanes of 5 bytes, more than the panels' 4.
        float[] rowPruned = ScalarReference.Random(random, 160 * 96);
        for (int o = 0; o < 160; o++)
            if (o % 10 != 0) Array.Clear(rowPruned, o * 96, 96);
        Assert.Null(PermutedSparseRows.CreateIfSmaller(rowPruned, 160, 96));
        Assert.NotNull(PermutedSparseRows.CreateIfSmaller(Pruned(random, 160 * 96, 0.9f), 160, 96));
    }

    [Fact]
    public void ThreeThreadsMatchOneBitwise()
    {
        var random = new Random(14);
        var twin = new TwinBuilder(200, 1, 1);
        TensorHandle y = twin.FullyConnected(twin.Input, Pruned(random, 200 * 1001, 0.9f), ScalarReference.Random(random, 1001), 1001, Activation.None);
        float[] input = ScalarReference.Random(random, 200);
        float[] one = EngineAssert.Run(twin.Engine, y, input, new SparseNetworkOptions { Threads = 1 });
        Assert.Equal(one, EngineAssert.Run(twin.Engine, y, input, new SparseNetworkOptions { Threads = 3 }));
    }

    /// <summary>Any sub-range writes only its outputs, reads the residual only there, and gives the full run's bits.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public unsafe void SubRangesWriteOnlyTheirOutputs(bool permuted)
    {
        var random = new Random(permuted ? 25 : 15);
        foreach (SimdWidth width in SimdSupport.Available)
            for (int trial = 0; trial < 30; trial++)
            {
                int inputs = random.Next(1, 90), outputs = random.Next(1, 70);
                float[] weights = Pruned(random, outputs * inputs, random.NextSingle());
                float[] input = ScalarReference.Random(random, inputs), bias = ScalarReference.Random(random, outputs);
                float[] residual = ScalarReference.Random(random, outputs);
                var rows = Rows.Of(weights, outputs, inputs, permuted);
                int start = random.Next(outputs + 1), end = random.Next(start, outputs + 1);
                float[] whole = new float[outputs], part = new float[outputs];
                Array.Fill(part, GemvRangeAssert.Untouched);
                for (int o = 0; o < outputs; o++)
                    if (o < start || o >= end) residual[o] = float.NaN;
                fixed (float* x = input, b = bias, r = residual, w = whole, p = part)
                {
                    Run(width, x, rows, b, r, p, start, end);
                    Run(width, x, rows, b, r, w, 0, outputs);
                }
                GemvRangeAssert.Matches(part, whole, weights, input, bias, residual, start, end, $"{width}");
            }
    }

    /// <summary>
    /// Row lengths from empty to full around the 16-output slices (so slices pad their short rows), inputs across the
    /// 32-input blocks of the permuted form and their ragged end, with infinities and NaN: each output equals the plain
    /// row-order sum of its nonzeros plus its bias bit for bit at every width, in both forms, and a row that never reads an
    /// infinite input stays finite (padding reads nothing).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public unsafe void SpecialInputsAndRaggedRows_GiveThePlainRowOrderSumAtEveryWidth(bool permuted)
    {
        var random = new Random(permuted ? 26 : 16);
        for (int trial = 0; trial < 60; trial++)
        {
            int inputs = random.Next(1, 140), outputs = random.Next(1, 60);
            float[] weights = new float[outputs * inputs];
            for (int o = 0; o < outputs; o++)
            {
                // Each row its own density, so one slice mixes empty, short and full rows.
                double density = random.Next(4) switch { 0 => 0, 1 => 1, _ => random.NextDouble() };
                for (int i = 0; i < inputs; i++)
                    if (random.NextDouble() < density) weights[o * inputs + i] = random.NextSingle() * 2 - 1;
            }
            float[] input = ScalarReference.Random(random, inputs), bias = ScalarReference.Random(random, outputs);
            foreach (int i in Enumerable.Range(0, 3).Select(_ => random.Next(inputs)))
                input[i] = random.Next(3) switch { 0 => float.PositiveInfinity, 1 => float.NegativeInfinity, _ => float.NaN };
            var expected = new float[outputs];
            for (int o = 0; o < outputs; o++)
            {
                float sum = 0f;
                for (int i = 0; i < inputs; i++)
                    if (weights[o * inputs + i] != 0f) sum = MathF.FusedMultiplyAdd(weights[o * inputs + i], input[i], sum);
                expected[o] = bias[o] + sum;
            }
            var rows = Rows.Of(weights, outputs, inputs, permuted);
            Assert.Equal(weights.Count(w => w != 0f), rows.NonZeroCount);
            foreach (SimdWidth width in SimdSupport.Available)
            {
                float[] actual = new float[outputs];
                fixed (float* x = input, b = bias, y = actual) Run(width, x, rows, b, null, y, 0, outputs);
                for (int o = 0; o < outputs; o++)
                    Assert.True(BitConverter.SingleToInt32Bits(expected[o]) == BitConverter.SingleToInt32Bits(actual[o]) || (float.IsNaN(expected[o]) && float.IsNaN(actual[o])),
                        $"{width}, {inputs} -> {outputs}, output {o}: {actual[o]}, expected {expected[o]}.");
            }
        }
    }

    private static unsafe void Run(SimdWidth width, float* input, Rows rows, float* bias, float* residual, float* output, int start, int end)
    {
        switch (width)
        {
            case SimdWidth.Vector512: rows.Run<Float512>(input, bias, residual, output, start, end); break;
            case SimdWidth.Vector256: rows.Run<Float256>(input, bias, residual, output, start, end); break;
            case SimdWidth.Vector128: rows.Run<Float128>(input, bias, residual, output, start, end); break;
            default: rows.Run<Scalar>(input, bias, residual, output, start, end); break;
        }
    }

    /// <summary>Either sparse form (gathered or permuted) of the same weights, run by its kernel.</summary>
    private sealed unsafe class Rows(SparseRows? gathered, PermutedSparseRows? permuted)
    {
        public static Rows Of(float[] weights, int outputs, int inputs, bool permuted) => permuted
            ? new(null, PermutedSparseRows.Create(weights, outputs, inputs))
            : new(new SparseRows(weights, outputs, inputs), null);

        public int NonZeroCount => gathered?.NonZeroCount ?? permuted!.NonZeroCount;

        public void Run<TVec>(float* input, float* bias, float* residual, float* output, int start, int end) where TVec : struct, IFloatVector<TVec>
        {
            if (gathered != null) FullyConnectedKernel.RunSparse<TVec>(input, gathered, bias, residual, output, start, end, Activation.None);
            else FullyConnectedKernel.RunPermuted<TVec>(input, permuted!, bias, residual, output, start, end, Activation.None);
        }
    }
}
