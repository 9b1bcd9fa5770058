using Microsoft.ML.Sparse.Formats;
using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse.Tests.Kernels;

public class PointwiseKernelTests
{
    /// <summary>Forces the SpMM path (any sparsity is at least 0) or the dense path (no sparsity reaches 2).</summary>
    public const float ForceSparse = 0f, ForceDense = 2f;

    public static TheoryData<SimdWidth, KernelPath> WidthsAndPaths()
    {
        var data = new TheoryData<SimdWidth, KernelPath>();
        foreach (var width in SimdSupport.Available)
            foreach (var path in Enum.GetValues<KernelPath>())
                data.Add(width, path);
        return data;
    }

    public static TheoryData<SimdWidth> Widths() => new(SimdSupport.Available);

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void MatchesReferenceOverShapesAndSparsities(SimdWidth width, KernelPath path)
    {
        var random = new Random(1);
        foreach (int outChannels in new[] { 1, 3, 5, 7, 9, 17 })
            foreach (int inChannels in new[] { 1, 3, 8, 19 })
                foreach (int pixels in new[] { 1, 2, 3, 7, 13, 49, 67 })
                    foreach (float sparsity in new[] { 0f, 0.5f, 0.9f, 0.99f, 1f })
                    {
                        var layer = PointwiseLayer.Random(random, outChannels, inChannels, sparsity);
                        layer.CheckFullRange(random, pixels, path, width, Activation.Relu6, withResidual: pixels % 2 == 1);
                    }
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void EveryPixelRemainderOfTheTileIsCorrect(SimdWidth width, KernelPath path)
    {
        var random = new Random(2);
        var layer = PointwiseLayer.Random(random, 9, 13, 0.5f);
        // One-channel blocks (this layer's): whole ranges of 9-16 vectors (or 3-16 and a 4-lane tail at 16 lanes) are one row
        // tile; larger ones take 12-vector row tiles while at least 16 vectors are left, then the rest. Up to two of those
        // and every remainder after them, at 16 lanes; many more at 8 and 4.
        for (int pixels = 1; pixels <= 2 * 12 * 16 + 16 * 16 + 17; pixels++)
            layer.CheckFullRange(random, pixels, path, width, Activation.None, withResidual: true);
    }

    [Fact]
    public void RowTilesTakeWholeRangesOfNineToSixteenVectorsOrAFourLaneTailOrTwelveAtATimeAndLongerChunksTheSparserTheWeights()
    {
        bool wideRegisterFile = System.Runtime.Intrinsics.X86.Avx512F.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported;
        if (!wideRegisterFile)
        {
            // 16 vector registers (AVX2 and older): no row tile.
            Assert.Equal((0, 0), PointwiseKernel.RowTile(13 * 8, 8, blockWidth: 1));
            return;
        }
        Assert.Equal((13, 0), PointwiseKernel.RowTile(13 * 16, 16, blockWidth: 1));
        Assert.Equal((16, 0), PointwiseKernel.RowTile(16 * 4, 4, blockWidth: 1));
        Assert.Equal((0, 0), PointwiseKernel.RowTile(8 * 16, 16, blockWidth: 1));
        Assert.Equal((0, 0), PointwiseKernel.RowTile(17 * 16, 16, blockWidth: 1));
        Assert.Equal((0, 0), PointwiseKernel.RowTile(13 * 16, 16, blockWidth: 2));
        // A 4-lane tail on 16 lanes only: 14x14 = 12 x 16 + 4, 7x7 rounded to 52 = 3 x 16 + 4.
        Assert.Equal((12, 4), PointwiseKernel.RowTile(196, 16, blockWidth: 1));
        Assert.Equal((3, 4), PointwiseKernel.RowTile(52, 16, blockWidth: 1));
        Assert.Equal((0, 0), PointwiseKernel.RowTile(2 * 16 + 4, 16, blockWidth: 1));
        Assert.Equal((0, 0), PointwiseKernel.RowTile(13 * 16 - 1, 16, blockWidth: 1));
        Assert.Equal((0, 0), PointwiseKernel.RowTile(12 * 8 + 4, 8, blockWidth: 1));

        if (!SimdSupport.Available.Contains(SimdWidth.Vector512)) return;
        // Layers compute 196 pixels of a 14x14 plane padded to 208 and 52 of a 7x7 one padded to 64; 28x28 whole.
        Assert.Equal(196, PointwiseKernel.PixelsToCompute(196, 208, SimdWidth.Vector512));
        Assert.Equal(52, PointwiseKernel.PixelsToCompute(49, 64, SimdWidth.Vector512));
        Assert.Equal(784, PointwiseKernel.PixelsToCompute(784, 784, SimdWidth.Vector512));
        Assert.Equal(208, PointwiseKernel.PixelsToCompute(196, 208, SimdWidth.Vector256));
        Assert.Equal(49, PointwiseKernel.PixelsToCompute(49, 49, SimdWidth.Vector512));

        // A 14x14 row is 12 x 16 + 4 floats: at least 32 KiB of slab (dense enough weights), up to 64 KiB when sparser.
        int rowBytes = 196 * sizeof(float), slab = 32 * 1024;
        Assert.Equal(slab / rowBytes, PointwiseKernel.ChunkRows(SimdWidth.Vector512, 196, blockWidth: 1, density: 0.5f));
        Assert.Equal((int)(12 / 0.2f), PointwiseKernel.ChunkRows(SimdWidth.Vector512, 196, blockWidth: 1, density: 0.2f));
        Assert.Equal(2 * slab / rowBytes, PointwiseKernel.ChunkRows(SimdWidth.Vector512, 196, blockWidth: 1, density: 0.05f));
        // Larger planes (28x28, 56x56) are walked in 12-vector row tiles, chunked the same way.
        Assert.Equal(slab / (12 * 16 * sizeof(float)), PointwiseKernel.ChunkRows(SimdWidth.Vector512, 784, blockWidth: 1, density: 0.5f));
        Assert.Equal(2 * slab / (12 * 16 * sizeof(float)), PointwiseKernel.ChunkRows(SimdWidth.Vector512, 3136, blockWidth: 1, density: 0.05f));
        // Four-vector tiles keep one slab whatever the density.
        Assert.Equal(slab / (4 * 16 * sizeof(float)), PointwiseKernel.ChunkRows(SimdWidth.Vector512, 196, blockWidth: 4, density: 0.05f));
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void LargerLayersMatchReference(SimdWidth width, KernelPath path)
    {
        var random = new Random(3);
        foreach (var (outChannels, inChannels, pixels) in new[] { (64, 32, 196), (40, 256, 100), (24, 96, 49) })
            foreach (float sparsity in new[] { 0f, 0.7f, 0.9f })
            {
                var layer = PointwiseLayer.Random(random, outChannels, inChannels, sparsity);
                layer.CheckFullRange(random, pixels, path, width, Activation.Relu, withResidual: false);
            }
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void EveryActivationWithAndWithoutResidual(SimdWidth width, KernelPath path)
    {
        var random = new Random(4);
        var activations = new[]
        {
            Activation.None, Activation.Relu, Activation.Relu6, Activation.Clip(-0.5f, 0.25f), Activation.HardSigmoid(),
            Activation.HardSigmoid(0.3f, 0.4f), Activation.HardSwish, Activation.Sigmoid, Activation.Swish,
        };
        Assert.Equal(Enum.GetValues<ActivationKind>().Length, activations.Select(a => a.Kind).Distinct().Count());
        var layer = PointwiseLayer.Random(random, 11, 20, 0.6f);
        foreach (var activation in activations)
            foreach (bool withResidual in new[] { false, true })
                foreach (int pixels in new[] { 83, 160 })
                    layer.CheckFullRange(random, pixels, path, width, activation, withResidual);
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void SubRangesWriteOnlyTheirPixelsAndChannels(SimdWidth width, KernelPath path)
    {
        var random = new Random(5);
        foreach (int blockWidth in new[] { 4, 2, 1 })
        {
            // Block-structured weights so the sparse path chooses each block width; 23 channels leave a remainder.
            var layer = PointwiseLayer.BlockStructured(random, 23, 30, blockWidth, 0.7f);
            using var weights = layer.Prepare(path);
            int granularity = weights.ChannelGranularity;
            for (int trial = 0; trial < 40; trial++)
            {
                int pixelStride = random.Next(1, 330);
                int pixelStart = random.Next(pixelStride);
                int pixelCount = random.Next(pixelStride - pixelStart + 1);
                int blocks = (23 + granularity - 1) / granularity;
                int channelStart = random.Next(blocks) * granularity;
                int channelEnd = Math.Min(23, channelStart + random.Next(blocks + 1) * granularity);
                layer.Check(random, weights, pixelStride, pixelStart, pixelCount, channelStart, Math.Max(channelStart, channelEnd),
                    width, Activation.Relu, withResidual: trial % 2 == 0);
            }
        }
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void PixelsGetTheSameBitsWhicheverAlignedRangeComputesThem(SimdWidth width, KernelPath path)
    {
        // Threads split pixels at multiples of 16 lanes, so results must not depend on where such a range starts or ends.
        var random = new Random(10);
        foreach (float sparsity in new[] { 0f, 0.7f, 0.95f })
        {
            var layer = PointwiseLayer.Random(random, 7, 37, sparsity);
            using var weights = layer.Prepare(path);
            const int pixels = 401;
            float[] input = PointwiseLayer.RandomValues(random, 37 * pixels), whole = new float[7 * pixels], pieces = new float[7 * pixels];
            layer.RunInto(weights, input, whole, pixels, 0, pixels, width);
            for (int start = 0; start < pixels;)
            {
                int end = Math.Min(pixels, start + 16 * random.Next(1, 12));
                layer.RunInto(weights, input, pieces, pixels, start, end - start, width);
                start = end;
            }
            Assert.Equal(whole, pieces);
        }
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void ClampedActivationsPropagateNaN(SimdWidth width, KernelPath path)
    {
        // Every weight nonzero, so a NaN input pixel reaches every output channel at that pixel and no other pixel.
        var random = new Random(11);
        var layer = PointwiseLayer.Random(random, 6, 9, 0f);
        using var weights = layer.Prepare(path);
        const int pixels = 200;
        foreach (int nanPixel in new[] { 0, 77, 150, 199 })
            foreach (var activation in new[] { Activation.Relu, Activation.Relu6, Activation.None })
            {
                float[] input = PointwiseLayer.RandomValues(random, 9 * pixels), output = new float[6 * pixels];
                input[4 * pixels + nanPixel] = float.NaN;
                layer.RunInto(weights, input, output, pixels, 0, pixels, width, activation);
                for (int c = 0; c < 6; c++)
                    for (int p = 0; p < pixels; p++)
                        Assert.True(float.IsNaN(output[c * pixels + p]) == (p == nanPixel), $"{width} {activation}: channel {c} pixel {p} is {output[c * pixels + p]}.");
            }
    }

    [Theory]
    [MemberData(nameof(WidthsAndPaths))]
    public void ResidualMayBeTheOutputBuffer(SimdWidth width, KernelPath path)
    {
        var random = new Random(9);
        var layer = PointwiseLayer.Random(random, 13, 21, 0.5f);
        using var weights = layer.Prepare(path);
        foreach (var (pixelStride, pixelStart, pixelCount) in new[] { (49, 0, 49), (196, 3, 150), (100, 10, 17), (30, 5, 5) })
            layer.Check(random, weights, pixelStride, pixelStart, pixelCount, 0, 13, width, Activation.Relu6, withResidual: true, residualInPlace: true);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void EmptyRowsProduceActivationOfBiasPlusResidual(SimdWidth width)
    {
        var random = new Random(6);
        var layer = PointwiseLayer.Random(random, 10, 16, 0.5f);
        foreach (int emptyChannel in new[] { 0, 3, 4, 9 })
            Array.Clear(layer.Weights, emptyChannel * 16, 16);
        foreach (var activation in new[] { Activation.None, Activation.Sigmoid })
            foreach (var path in new[] { KernelPath.Sparse, KernelPath.SparseChunked })
                layer.CheckFullRange(random, 37, path, width, activation, withResidual: true);
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void ChosenBlockWidthsComputeCorrectly(SimdWidth width)
    {
        var random = new Random(7);
        foreach (int blockWidth in new[] { 4, 2, 1 })
            foreach (int outChannels in new[] { 1, 3, 5, 7, 9, 17 })
            {
                var layer = PointwiseLayer.BlockStructured(random, outChannels, 24, blockWidth, 0.8f);
                foreach (var path in new[] { KernelPath.Sparse, KernelPath.SparseChunked })
                    layer.CheckFullRange(random, 70, path, width, Activation.None, withResidual: false);
            }
    }

    [Fact]
    public void InvalidRangesAreRejected()
    {
        var layer = PointwiseLayer.BlockStructured(new Random(8), 12, 8, 4, 0.5f);
        using var weights = layer.Prepare(ForceSparse);
        Assert.Equal(4, weights.ChannelGranularity);
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(weights, 10, 0, 10, 2, 12));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(weights, 10, 0, 10, 0, 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(weights, 10, 0, 10, 0, 13));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(weights, 10, 5, 6, 0, 12));
        Assert.Throws<ArgumentOutOfRangeException>(() => Run(weights, 10, -1, 3, 0, 12));
    }

    [Theory]
    [InlineData(0.0f)]
    [InlineData(0.9f)]
    public unsafe void OperandsWithTheirOwnPlaneStridesGiveTheDenseResult(float sparsity)
    {
        // 14x14 planes with input, output and residual planes padded differently (the plan pads arena tensors to 64 bytes).
        const int pixels = 196, inputStride = 208, outputStride = 200, residualStride = 197;
        var random = new Random(31);
        var layer = PointwiseLayer.Random(random, 37, 29, sparsity);
        using var weights = layer.Prepare(KernelPath.SparseChunked);
        float[] input = PointwiseLayer.RandomValues(random, layer.InChannels * pixels), residual = PointwiseLayer.RandomValues(random, layer.OutChannels * pixels);
        var dense = new float[layer.OutChannels * pixels];
        float[] stridedInput = Spread(input, pixels, inputStride), stridedResidual = Spread(residual, pixels, residualStride);
        var strided = new float[layer.OutChannels * outputStride];
        Array.Fill(strided, float.NaN);
        fixed (float* x = input, r = residual, y = dense, sx = stridedInput, sr = stridedResidual, sy = strided)
        {
            PointwiseKernel.Run(weights, x, y, r, PlaneStrides.Dense(pixels), 0, pixels, 0, layer.OutChannels, Activation.Relu6, SimdWidth.Auto);
            PointwiseKernel.Run(weights, sx, sy, sr, new PlaneStrides(inputStride, outputStride, residualStride), 0, pixels, 0, layer.OutChannels,
                Activation.Relu6, SimdWidth.Auto);
        }
        for (int c = 0; c < layer.OutChannels; c++)
            for (int p = 0; p < outputStride; p++)
            {
                float value = strided[c * outputStride + p];
                if (p < pixels) Assert.Equal(dense[c * pixels + p], value);
                else Assert.True(float.IsNaN(value), $"channel {c}: wrote padding pixel {p}.");
            }
    }

    /// <summary>Dense planes copied <paramref name="stride"/> floats apart, the gaps NaN.</summary>
    private static float[] Spread(float[] planes, int pixels, int stride)
    {
        var spread = new float[planes.Length / pixels * stride];
        Array.Fill(spread, float.NaN);
        for (int c = 0; c < planes.Length / pixels; c++) Array.Copy(planes, c * pixels, spread, c * stride, pixels);
        return spread;
    }

    private static unsafe void Run(PointwiseWeights weights, int pixelStride, int pixelStart, int pixelCount, int channelStart, int channelEnd)
    {
        var input = new float[weights.InChannels * pixelStride];
        var output = new float[weights.OutChannels * pixelStride];
        fixed (float* inputPointer = input, outputPointer = output)
            PointwiseKernel.Run(weights, inputPointer, outputPointer, null, PlaneStrides.Dense(pixelStride), pixelStart, pixelCount, channelStart, channelEnd,
                Activation.None, SimdWidth.Auto);
    }
}

/// <summary>A random 1x1 layer and the plain scalar reference every test compares the kernels against.</summary>
internal sealed class PointwiseLayer(float[] weights, float[] bias, int outChannels, int inChannels)
{
    private const float Sentinel = -12345.5f;

    public float[] Weights { get; } = weights;
    public float[] Bias { get; } = bias;
    public int OutChannels { get; } = outChannels;
    public int InChannels { get; } = inChannels;

    /// <summary>Uniform weights in [-1, 1] with each one zero with probability <paramref name="sparsity"/>.</summary>
    public static PointwiseLayer Random(Random random, int outChannels, int inChannels, float sparsity)
    {
        var weights = new float[outChannels * inChannels];
        for (int i = 0; i < weights.Length; i++)
            weights[i] = random.NextSingle() < sparsity ? 0f : NonZero(random);
        return new PointwiseLayer(weights, RandomValues(random, outChannels), outChannels, inChannels);
    }

    /// <summary>Weights whose channels, in aligned groups of <paramref name="blockWidth"/>, share the same nonzero inputs.</summary>
    public static PointwiseLayer BlockStructured(Random random, int outChannels, int inChannels, int blockWidth, float sparsity)
    {
        var weights = new float[outChannels * inChannels];
        for (int first = 0; first < outChannels; first += blockWidth)
            for (int k = 0; k < inChannels; k++)
            {
                if (random.NextSingle() < sparsity) continue;
                for (int c = first; c < Math.Min(outChannels, first + blockWidth); c++)
                    weights[c * inChannels + k] = NonZero(random);
            }
        return new PointwiseLayer(weights, RandomValues(random, outChannels), outChannels, inChannels);
    }

    public PointwiseWeights Prepare(float sparseThreshold) =>
        PointwiseWeights.Create(Weights, Bias, OutChannels, InChannels, sparseThreshold);

    public PointwiseWeights Prepare(KernelPath path) => path switch
    {
        KernelPath.Dense => Prepare(PointwiseKernelTests.ForceDense),
        KernelPath.Sparse => Prepare(PointwiseKernelTests.ForceSparse),
        _ => PointwiseWeights.Create(Weights, Bias, OutChannels, InChannels, PointwiseKernelTests.ForceSparse, KernelPathChunkRows),
    };

    /// <summary>Rows per chunk of <see cref="KernelPath.SparseChunked"/>: odd, so chunks end off every alignment, and below most test layers' inputs.</summary>
    public const int KernelPathChunkRows = 7;

    public void CheckFullRange(Random random, int pixels, KernelPath path, SimdWidth width, in Activation activation, bool withResidual)
    {
        using var weights = Prepare(path);
        Check(random, weights, pixels, 0, pixels, 0, OutChannels, width, activation, withResidual);
    }

    /// <summary>Runs pixels [pixelStart, +pixelCount) of every channel with no residual (ReLU6 unless told).</summary>
    public unsafe void RunInto(PointwiseWeights weights, float[] input, float[] output, int pixelStride, int pixelStart, int pixelCount, SimdWidth width,
        Activation? activation = null)
    {
        fixed (float* inputPointer = input, outputPointer = output)
            PointwiseKernel.Run(weights, inputPointer, outputPointer, null, PlaneStrides.Dense(pixelStride), pixelStart, pixelCount, 0, OutChannels, activation ?? Activation.Relu6, width);
    }


    /// <summary>
    /// Runs the kernel on fresh random activations and compares with <see cref="Reference"/>; input and residual outside the
    /// range are NaN (so reading them would show) and the output outside it must keep its sentinel.
    /// </summary>
    public unsafe void Check(Random random, PointwiseWeights weights, int pixelStride, int pixelStart, int pixelCount,
        int channelStart, int channelEnd, SimdWidth width, in Activation activation, bool withResidual, bool residualInPlace = false)
    {
        var input = RandomValues(random, InChannels * pixelStride);
        var residual = withResidual ? RandomValues(random, OutChannels * pixelStride) : null;
        for (int k = 0; k < InChannels; k++)
            for (int p = 0; p < pixelStride; p++)
                if (p < pixelStart || p >= pixelStart + pixelCount) input[k * pixelStride + p] = float.NaN;
        if (residual != null && !residualInPlace)
            for (int i = 0; i < residual.Length; i++)
                if (!InRange(i, pixelStride, pixelStart, pixelCount, channelStart, channelEnd)) residual[i] = float.NaN;

        // The output sits between guard bands; in place, it starts as the residual (which the kernel must read before overwriting).
        const int guard = 64;
        var output = new float[OutChannels * pixelStride + 2 * guard];
        Array.Fill(output, Sentinel);
        if (residualInPlace) residual!.CopyTo(output, guard);
        var before = (float[])output.Clone();
        fixed (float* inputPointer = input, outputPointer = output, residualPointer = residual)
            PointwiseKernel.Run(weights, inputPointer, outputPointer + guard, residualInPlace ? outputPointer + guard : residualPointer,
                PlaneStrides.Dense(pixelStride), pixelStart, pixelCount, channelStart, channelEnd, activation, width);

        var expected = Reference(input, residual, pixelStride, pixelStart, pixelCount, channelStart, channelEnd, activation);
        float scale = Math.Max(1e-20f, expected.Max(MathF.Abs));
        string what = $"{weights.KernelName} {OutChannels}x{InChannels}, pixels [{pixelStart}, +{pixelCount}) of {pixelStride}, " +
            $"channels [{channelStart}, {channelEnd}), {width}, {activation}, residual {withResidual} in place {residualInPlace}";
        for (int i = 0; i < output.Length; i++)
        {
            int index = i - guard;
            if (index >= 0 && index < OutChannels * pixelStride && InRange(index, pixelStride, pixelStart, pixelCount, channelStart, channelEnd))
            {
                float error = MathF.Abs(output[i] - expected[index]) / scale;
                Assert.True(error <= 1e-5f, $"{what}: element {index} is {output[i]}, expected {expected[index]} (relative error {error}).");
            }
            else
            {
                Assert.True(output[i].Equals(before[i]), $"{what}: wrote element {index} outside the range.");
            }
        }
    }

    /// <summary>The plain triple loop, accumulating in double; zero outside the range.</summary>
    public float[] Reference(float[] input, float[]? residual, int pixelStride, int pixelStart, int pixelCount,
        int channelStart, int channelEnd, in Activation activation)
    {
        var output = new float[OutChannels * pixelStride];
        for (int c = channelStart; c < channelEnd; c++)
            for (int p = pixelStart; p < pixelStart + pixelCount; p++)
            {
                double sum = Bias[c];
                for (int k = 0; k < InChannels; k++)
                    sum += (double)Weights[c * InChannels + k] * input[k * pixelStride + p];
                if (residual != null) sum += residual[c * pixelStride + p];
                output[c * pixelStride + p] = activation.Apply((float)sum);
            }
        return output;
    }

    private static bool InRange(int index, int pixelStride, int pixelStart, int pixelCount, int channelStart, int channelEnd)
    {
        int c = index / pixelStride, p = index % pixelStride;
        return c >= channelStart && c < channelEnd && p >= pixelStart && p < pixelStart + pixelCount;
    }

    private static float NonZero(Random random) => random.NextSingle() < 0.5f ? -0.05f - random.NextSingle() : 0.05f + random.NextSingle();

    internal static float[] RandomValues(Random random, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = random.NextSingle() * 2f - 1f;
        return values;
    }
}

/// <summary>The 1x1 kernel paths every test runs: dense, sparse over one chunk of input rows, sparse over many chunks.</summary>
public enum KernelPath
{
    Dense,
    Sparse,
    SparseChunked,
}
