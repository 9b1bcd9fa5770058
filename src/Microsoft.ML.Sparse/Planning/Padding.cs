namespace Microsoft.ML.Sparse;

/// <summary>Explicit zero padding of a convolution, ONNX style (begin and end may differ).</summary>
/// <param name="Top">Rows added above.</param>
/// <param name="Left">Columns added on the left.</param>
/// <param name="Bottom">Rows added below.</param>
/// <param name="Right">Columns added on the right.</param>
public readonly record struct Padding(int Top, int Left, int Bottom, int Right)
{
    /// <summary>The same padding on every side.</summary>
    public static Padding Uniform(int pad) => new(pad, pad, pad, pad);

    /// <summary>TensorFlow/ONNX SAME_UPPER padding for one input size: the extra row or column goes at the end.</summary>
    public static Padding SameUpper(int inputHeight, int inputWidth, int kernelHeight, int kernelWidth, int strideHeight, int strideWidth)
    {
        (int top, int bottom) = Split(inputHeight, kernelHeight, strideHeight);
        (int left, int right) = Split(inputWidth, kernelWidth, strideWidth);
        return new Padding(top, left, bottom, right);

        static (int Begin, int End) Split(int size, int kernel, int stride)
        {
            int output = (size + stride - 1) / stride;
            int total = Math.Max(0, (output - 1) * stride + kernel - size);
            return (total / 2, total - total / 2);
        }
    }
}
