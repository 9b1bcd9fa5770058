using Microsoft.ML.Sparse.Kernels;
using Microsoft.ML.Sparse.Tests.Engine;

namespace Microsoft.ML.Sparse.Tests.Kernels;

/// <summary>Direct and depthwise convolutions (through one-layer networks) against the scalar reference.</summary>
public sealed class ConvolutionKernelTests
{
    private static readonly int[] PadValues = [0, 1, 2];

    /// <summary>Every padding combination (0/1/2 per side), 3x3 and 5x5, strides 1 and 2, small and odd planes.</summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    public void Depthwise_MatchesReference_ForEveryPadding(int kernel, int stride)
    {
        var random = new Random(kernel * 10 + stride);
        foreach ((int height, int width, Padding pad) in EveryPadding(kernel, [1, 2, 3, 5, 8, 17, 19], widthStep: 3))
            CheckDepthwise(random, channels: 3, height, width, kernel, stride, pad);
    }

    /// <summary>Output widths 1..40 cover every remainder of every vector width and of the two-vector unroll.</summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    [InlineData(7, 2)]
    public void Depthwise_MatchesReference_ForEveryRowRemainder(int kernel, int stride)
    {
        var random = new Random(100 + kernel * 10 + stride);
        for (int width = 1; width <= 40 * stride; width += stride)
            CheckDepthwise(random, channels: 4, height: kernel - 1 + width % 3, width, kernel, stride, new Padding(kernel / 2, kernel / 2, kernel / 2 - width % 2, kernel / 2));
    }

    /// <summary>
    /// The row-blocked 3x3 path (four output rows per pass, rows at least a vector wide): output heights 1..9 cover every
    /// remainder of the four-row block, widths 1..40 every vector remainder, with asymmetric padding and mixed strides.
    /// </summary>
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(1, 2)]
    [InlineData(2, 1)]
    public void Depthwise3x3_MatchesReference_ForEveryRowBlockRemainder(int strideHeight, int strideWidth)
    {
        var random = new Random(200 + strideHeight * 10 + strideWidth);
        for (int outWidth = 1; outWidth <= 40; outWidth++)
        {
            var pad = new Padding(outWidth % 3, (outWidth / 3) % 3, (outWidth / 9) % 3, (outWidth + 1) % 3);
            CheckDepthwise3x3(random, 2, 1 + outWidth % 9, outWidth, strideHeight, strideWidth, pad, Activation.Relu6);
        }
    }

    /// <summary>
    /// 3x3 stride 2 read straight from the input (AVX-512): output rows of 1-64 columns, so every vector count and overlap
    /// of the last vector, with windows that end on the input's last column (no right padding) or in the padding, and
    /// the left padding 0-2; no activation, so every term of every output shows.
    /// </summary>
    [Fact]
    public void Depthwise3x3Stride2_EveryRowWidthAndRightEdge_MatchReference()
    {
        var random = new Random(300);
        for (int outWidth = 1; outWidth <= 64; outWidth++)
            foreach (int right in new[] { 0, 1 })
                CheckDepthwise3x3(random, 3, 1 + outWidth % 4, outWidth, 2, 2, new Padding(outWidth % 2, outWidth % 3, 1, right), Activation.None);
    }

    /// <summary>
    /// 3x3 stride 1 read straight from the input (AVX-512, rows at least a vector wide): output rows of 16-70 columns and
    /// the widest supported (256) and one past it, so the first, inner, and shifted last vectors, with left padding 0-2
    /// and windows that end on the input's last column or in the padding; heights 1-9 for every remainder of the four-row
    /// pass; no activation, so every term of every output shows.
    /// </summary>
    [Fact]
    public void Depthwise3x3Stride1_EveryRowWidthAndEdge_MatchReference()
    {
        var random = new Random(350);
        foreach (int outWidth in Enumerable.Range(16, 55).Concat([255, 256, 257]))
            foreach (int right in new[] { 0, 1, 2 })
                CheckDepthwise3x3(random, 3, 1 + outWidth % 9, outWidth, 1, 1, new Padding(outWidth % 3, (outWidth / 3) % 3, outWidth % 2, right), Activation.None);
    }

    /// <summary>
    /// 3x3 stride 1 where each zero-padded row is exactly one vector (14x14 with padding 1 under AVX-512, 6x6 under AVX2,
    /// 2x2 under SSE/NEON): every split of the two padding columns, output heights 1..6 and 14, every activation kind
    /// that changes values.
    /// </summary>
    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(16)]
    public void Depthwise3x3_RowsOfOneVector_MatchReference(int lanes)
    {
        var random = new Random(400 + lanes);
        foreach (int outHeight in new[] { 1, 2, 3, 4, 5, 6, 14 })
            foreach (int left in new[] { 0, 1, 2 })
            {
                var pad = new Padding(outHeight % 2, left, (outHeight + 1) % 2, 2 - left);
                int width = lanes - 2, height = outHeight + 2 - pad.Top - pad.Bottom;
                var activation = (outHeight % 3) switch { 0 => Activation.Relu6, 1 => Activation.HardSwish, _ => default };
                var builder = new SparseNetworkBuilder(5, height, width);
                float[] w = ScalarReference.Random(random, 5 * 9), b = ScalarReference.Random(random, 5), input = ScalarReference.Random(random, builder.Input.Length);
                TensorHandle y = builder.DepthwiseConv(builder.Input, w, b, 3, 3, 1, 1, pad, activation);
                float[] expected = ScalarReference.Conv(input, 5, height, width, w, b, 5, 3, 3, 1, 1, pad, 5, activation);
                Assert.Equal(5 * outHeight * (lanes - 2), expected.Length);
                CheckEveryWidthAndThreadCount(builder, y, input, expected, $"depthwise 3x3 s1 {height}x{width} {pad} {activation}");
            }
    }

    /// <summary>
    /// The depthwise kernel on bands of output rows (as the fused 1x1 + depthwise layer runs it: the band's input rows, its
    /// output pointer inside each plane, the planes' own strides) gives the whole plane's bits and writes nothing outside
    /// its band, on planes that take every path (7x7 flat, 14x14 one-vector rows, 8-wide lanes, 20- and 33-wide rows from
    /// the input at strides 1 and 2, 5x5 through the phase planes), bands of 1-5 rows run last band first, every SIMD
    /// width, with planes packed edge to edge, so a store past a band's rows lands on a finished band or plane and shows.
    /// </summary>
    [Theory]
    [InlineData(7, 7, 3, 1)]
    [InlineData(14, 14, 3, 1)]
    [InlineData(9, 8, 3, 1)]
    [InlineData(11, 20, 3, 1)]
    [InlineData(13, 33, 3, 2)]
    [InlineData(10, 12, 5, 1)]
    [InlineData(15, 14, 5, 2)]
    [InlineData(7, 7, 5, 1)]
    [InlineData(14, 14, 5, 1)]
    [InlineData(9, 11, 5, 1)]
    [InlineData(12, 40, 5, 1)]
    [InlineData(28, 28, 5, 2)]
    [InlineData(11, 57, 5, 2)]
    [InlineData(14, 14, 5, 2)]
    public unsafe void Depthwise_RowBands_MatchTheWholePlane_AndWriteOnlyTheirRows(int height, int width, int kernel, int stride)
    {
        const int channels = 5, guard = 64;
        var random = new Random(500 + height * width + kernel * 10 + stride);
        var g = new ConvGeometry(height, width, kernel, kernel, stride, stride, Padding.Uniform(kernel / 2));
        int plane = g.OutHeight * g.OutWidth;
        float[] input = ScalarReference.Random(random, channels * height * width), w = ScalarReference.Random(random, channels * kernel * kernel),
            b = ScalarReference.Random(random, channels), scratch = Enumerable.Repeat(float.NaN, DepthwiseConvKernel.ScratchFloats(g) + 64).ToArray();
        foreach (SimdWidth simd in SimdSupport.Available)
            for (int bandRows = 1; bandRows <= 5; bandRows++)
            {
                float[] whole = new float[channels * plane + guard], banded = new float[channels * plane + guard];
                Array.Fill(whole, float.NaN);
                Array.Fill(banded, float.NaN);
                fixed (float* ip = input, wp = w, bp = b, op = whole, bo = banded, sp = scratch)
                {
                    RunDepthwise(simd, ip, op, wp, bp, g, sp);
                    // Last band first: a band that wrote past its rows would clobber a finished one.
                    for (int o0 = (g.OutHeight - 1) / bandRows * bandRows; o0 >= 0; o0 -= bandRows)
                    {
                        ConvGeometry band = g.RowBand(o0, Math.Min(g.OutHeight, o0 + bandRows), out int r0) with
                        {
                            InPlaneStride = height * width,
                            OutPlaneStride = plane,
                        };
                        RunDepthwise(simd, ip + (long)r0 * width, bo + (long)o0 * g.OutWidth, wp, bp, band, sp);
                    }
                }
                Assert.True(whole.AsSpan().SequenceEqual(banded), $"{height}x{width} {kernel}x{kernel} s{stride}, {simd}: bands of {bandRows} rows differ from the whole plane");
                Assert.All(banded[(channels * plane)..], value => Assert.True(float.IsNaN(value), "written past the last plane"));
            }
    }

    private static unsafe void RunDepthwise(SimdWidth simd, float* input, float* output, float* weights, float* bias, in ConvGeometry g, float* scratch)
    {
        Activation activation = Activation.Relu6;
        switch (simd)
        {
            case SimdWidth.Vector512: DepthwiseConvKernel.Run<Float512>(input, output, weights, bias, g, 0, 5, activation, scratch); break;
            case SimdWidth.Vector256: DepthwiseConvKernel.Run<Float256>(input, output, weights, bias, g, 0, 5, activation, scratch); break;
            case SimdWidth.Vector128: DepthwiseConvKernel.Run<Float128>(input, output, weights, bias, g, 0, 5, activation, scratch); break;
            default: DepthwiseConvKernel.Run<Scalar>(input, output, weights, bias, g, 0, 5, activation, scratch); break;
        }
    }

    /// <summary>
    /// <paramref name="channels"/> channels of 3x3 depthwise on the smallest plane giving the output size under
    /// <paramref name="pad"/> and the strides, at every SIMD width and thread count.
    /// </summary>
    private static void CheckDepthwise3x3(Random random, int channels, int outHeight, int outWidth, int strideHeight, int strideWidth, Padding pad, Activation activation)
    {
        int height = Math.Max(1, (outHeight - 1) * strideHeight + 3 - pad.Top - pad.Bottom);
        int width = Math.Max(1, (outWidth - 1) * strideWidth + 3 - pad.Left - pad.Right);
        var builder = new SparseNetworkBuilder(channels, height, width);
        float[] w = ScalarReference.Random(random, channels * 9), b = ScalarReference.Random(random, channels), input = ScalarReference.Random(random, builder.Input.Length);
        TensorHandle y = builder.DepthwiseConv(builder.Input, w, b, 3, 3, strideHeight, strideWidth, pad, activation);
        float[] expected = ScalarReference.Conv(input, channels, height, width, w, b, channels, 3, 3, strideHeight, strideWidth, pad, channels, activation);
        Assert.Equal(outHeight * outWidth * channels, expected.Length);
        CheckEveryWidthAndThreadCount(builder, y, input, expected, $"depthwise 3x3 s{strideHeight}x{strideWidth} {height}x{width} {pad} {activation}");
    }

    /// <summary>Every SIMD width and thread count against <paramref name="expected"/>; 2 threads bitwise equal to 1.</summary>
    private static void CheckEveryWidthAndThreadCount(SparseNetworkBuilder builder, TensorHandle y, float[] input, float[] expected, string what)
    {
        foreach (SimdWidth width in SimdSupport.Available)
        {
            float[]? singleThreaded = null;
            foreach (int threads in EngineAssert.ThreadCounts)
            {
                float[] actual = EngineAssert.Run(builder, y, input, new SparseNetworkOptions { Threads = threads, MaxSimdWidth = width });
                EngineAssert.Close(expected, actual, 1e-5, $"{what}, {width}, {threads} thread(s)");
                singleThreaded ??= actual;
                Assert.True(singleThreaded.AsSpan().SequenceEqual(actual), $"{what}, {width}: {threads} threads differ bitwise from 1 thread.");
            }
        }
    }

    /// <summary>
    /// Small planes (the channels-in-lanes path under wide vectors): 37 channels give full and partial lane blocks, and
    /// two threads start blocks at other channels; 3x3 and 5x5, strides 1 and 2, asymmetric padding, planes 1..9 wide.
    /// </summary>
    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(5, 1)]
    [InlineData(5, 2)]
    public void Depthwise_SmallPlanes_MatchReference_AcrossLaneBlocks(int kernel, int stride)
    {
        var random = new Random(300 + kernel * 10 + stride);
        for (int size = 1; size <= 9; size++)
        {
            var pad = new Padding(size % 3, (size + 1) % 3, kernel / 2, (size / 2) % 3);
            int height = Math.Max(size, kernel - pad.Top - pad.Bottom), width = Math.Max(size + 1, kernel - pad.Left - pad.Right);
            CheckDepthwise(random, channels: 37, height, width, kernel, stride, pad);
        }
    }

    /// <summary>
    /// Stride 1 with "same" width padding on planes of at most 64 pixels (the masked flat path under AVX-512, 7x7 in
    /// MobileNets): every split of the width padding, top/bottom padding 0..k-1, 3x3 and 5x5, widths 1..9, 37 channels.
    /// </summary>
    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Depthwise_SmallSamePaddedPlanes_MatchReference(int kernel)
    {
        var random = new Random(500 + kernel);
        for (int width = 1; width <= 9; width++)
            for (int left = 0; left < kernel; left++)
            {
                int height = Math.Max(1, 64 / width - (width + left) % 3), top = (width + left) % kernel;
                var pad = new Padding(top, left, kernel - 1 - top, kernel - 1 - left);
                CheckDepthwise(random, channels: 37, Math.Min(height, 9), width, kernel, stride: 1, pad);
            }
    }

    [Fact]
    public void Depthwise_HandlesRectangularKernelsAndStrides()
    {
        var random = new Random(7);
        var twin = new TwinBuilder(5, 13, 21);
        float[] w = ScalarReference.Random(random, 5 * 2 * 4), b = ScalarReference.Random(random, 5);
        TensorHandle y = twin.Engine.DepthwiseConv(twin.Input, w, b, 2, 4, 1, 3, new Padding(1, 0, 0, 2), Activation.Relu);
        float[] input = ScalarReference.Random(random, twin.Input.Length);
        float[] expected = ScalarReference.Conv(input, 5, 13, 21, w, b, 5, 2, 4, 1, 3, new Padding(1, 0, 0, 2), 5, Activation.Relu);
        CheckEveryWidthAndThreadCount(twin.Engine, y, input, expected, "depthwise 2x4 s1x3");
    }

    /// <summary>The first layer: 3x3 stride 2 over 3 channels with every padding, plus Cin 1 and 4 and 5x5 / stride 1.</summary>
    [Theory]
    [InlineData(3, 3, 2, 8)]
    [InlineData(1, 3, 2, 5)]
    [InlineData(4, 3, 1, 6)]
    [InlineData(3, 5, 2, 4)]
    [InlineData(4, 5, 1, 9)]
    public void DirectConv_MatchesReference_ForEveryPadding(int inChannels, int kernel, int stride, int outChannels)
    {
        var random = new Random(inChannels * 100 + kernel * 10 + stride);
        foreach ((int height, int width, Padding pad) in EveryPadding(kernel, [1, 2, 3, 7, 16, 17, 33], widthStep: 5))
        {
            var twin = new TwinBuilder(inChannels, height, width);
            TensorHandle y = twin.Conv(twin.Input, ScalarReference.Random(random, outChannels * inChannels * kernel * kernel),
                ScalarReference.Random(random, outChannels), outChannels, kernel, stride, pad, Activation.Relu6);
            EngineAssert.MatchesReference(twin, y, random, $"conv {inChannels}->{outChannels} {kernel}x{kernel} s{stride} {height}x{width} {pad}");
        }
    }

    /// <summary>
    /// The first layer with every activation, in registers both in the four-channel blocks and in the 1-3 channels after
    /// them (output channels 4-7), on a 224-style plane and an odd one, strides 1 and 2.
    /// </summary>
    [Fact]
    public void DirectConv_EveryActivation_EveryChannelRemainder_MatchesReference()
    {
        var random = new Random(12);
        for (int a = 0; a < DepthwiseWindowTests.Activations.Length; a++)
        {
            Activation activation = DepthwiseWindowTests.Activations[a];
            int outChannels = 4 + a % 4, size = a % 2 == 0 ? 40 : 23, stride = 1 + a % 2;
            var twin = new TwinBuilder(3, size, size + 3);
            TensorHandle y = twin.Conv(twin.Input, ScalarReference.Random(random, outChannels * 27), ScalarReference.Random(random, outChannels), outChannels, 3, stride,
                new Padding(1, 0, 1, 1), activation);
            EngineAssert.MatchesReference(twin, y, random, $"conv 3->{outChannels} s{stride} {size}x{size + 3} {activation}");
        }
    }

    /// <summary>
    /// Output rows of every whole-vector count up to eight 16-lane vectors, with and without a ragged end, so each of the
    /// 4-, 3-, 2- and 1-vector tiles and the overlapping last vector runs at every SIMD width; strides 1 and 2.
    /// </summary>
    [Fact]
    public void DirectConv_EveryTileWidth_MatchesReference()
    {
        var random = new Random(21);
        foreach (int outWidth in new[] { 5, 15, 16, 17, 31, 32, 40, 47, 48, 49, 63, 64, 65, 79, 96, 111, 112, 113, 128, 129 })
            for (int stride = 1; stride <= 2; stride++)
            {
                int width = (outWidth - 1) * stride + 1, height = 3 + outWidth % 3, outChannels = 4 + outWidth % 5;
                var twin = new TwinBuilder(3, height, width);
                TensorHandle y = twin.Conv(twin.Input, ScalarReference.Random(random, outChannels * 27), ScalarReference.Random(random, outChannels), outChannels, 3, stride,
                    new Padding(1, 1, 1, 1), outWidth % 2 == 0 ? Activation.Swish : Activation.Relu6);
                EngineAssert.MatchesReference(twin, y, random, $"conv 3->{outChannels} s{stride} {height}x{width}");
            }
    }

    [Fact]
    public void DirectConv_AfterHwcTranspose_MatchesReference()
    {
        var random = new Random(11);
        var twin = new TwinBuilder(3, 37, 29);
        TensorHandle chw = twin.TransposeHwcToChw(twin.Input);
        TensorHandle y = twin.Conv(chw, ScalarReference.Random(random, 16 * 3 * 9), ScalarReference.Random(random, 16), 16, 3, 2,
            Padding.SameUpper(37, 29, 3, 3, 2, 2), Activation.HardSwish);
        EngineAssert.MatchesReference(twin, y, random, "HWC input conv");
    }

    /// <summary>The stride-2 split used by the planes: every length, checked against the definition, writing nothing past its share.</summary>
    [Fact]
    public unsafe void Deinterleave_SplitsEvenAndOddColumns()
    {
        var random = new Random(3);
        for (int length = 1; length <= 80; length++)
        {
            float[] row = ScalarReference.Random(random, length);
            int evenCount = (length + 1) / 2, oddCount = length / 2;
            float[] even = Enumerable.Repeat(float.NaN, evenCount + 1).ToArray(), odd = Enumerable.Repeat(float.NaN, oddCount + 1).ToArray();
            fixed (float* r = row, e = even, o = odd) ConvPlanes.Deinterleave(r, length, e, o);
            for (int j = 0; j < evenCount; j++) Assert.Equal(row[2 * j], even[j]);
            for (int j = 0; j < oddCount; j++) Assert.Equal(row[2 * j + 1], odd[j]);
            Assert.True(float.IsNaN(even[evenCount]) && float.IsNaN(odd[oddCount]), $"length {length}: wrote past its share");
        }
    }

    private static void CheckDepthwise(Random random, int channels, int height, int width, int kernel, int stride, Padding pad)
    {
        var twin = new TwinBuilder(channels, height, width);
        TensorHandle y = twin.Depthwise(twin.Input, ScalarReference.Random(random, channels * kernel * kernel), ScalarReference.Random(random, channels),
            kernel, stride, pad, Activation.Relu6);
        EngineAssert.MatchesReference(twin, y, random, $"depthwise {kernel}x{kernel} s{stride} {height}x{width} {pad}");
    }

    /// <summary>Every padding (0/1/2 per side), each with a plane size taken in turn from <paramref name="sizes"/>; skips windows larger than the padded plane.</summary>
    private static IEnumerable<(int Height, int Width, Padding Pad)> EveryPadding(int kernel, int[] sizes, int widthStep)
    {
        int index = 0;
        foreach (int top in PadValues)
            foreach (int left in PadValues)
                foreach (int bottom in PadValues)
                    foreach (int right in PadValues)
                    {
                        int height = sizes[index % sizes.Length], width = sizes[(index * widthStep + 1) % sizes.Length];
                        index++;
                        if (height + top + bottom >= kernel && width + left + right >= kernel) yield return (height, width, new Padding(top, left, bottom, right));
                    }
    }
}
