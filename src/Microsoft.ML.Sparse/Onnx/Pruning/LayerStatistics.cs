using System.Numerics;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// What the calibration images tell about one layer's input X (channels x samples, every pixel of every image a sample):
/// the sum of X X^T (channels x channels, double) and the per-channel sums for the mean. Memory is channels^2 doubles,
/// whatever the number of images.
/// </summary>
internal sealed class LayerStatistics
{
    public LayerStatistics(int channels, bool withSecondMoment)
    {
        Channels = channels;
        SecondMoment = withSecondMoment ? new double[checked(channels * channels)] : null;
        Sums = new double[channels];
    }

    public int Channels { get; }

    /// <summary>Sum over samples of x x^T (row-major, symmetric), or null when only means are collected.</summary>
    public double[]? SecondMoment { get; }

    public double[] Sums { get; }

    public long Samples { get; private set; }

    /// <summary>Sum over samples of d p^T, d the dense network's input and p the pruned network's (row-major), when collected.</summary>
    public double[]? CrossMoment { get; private set; }

    /// <summary>Per-channel sums of the dense network's input, when collected with <see cref="AddCross"/>.</summary>
    public double[]? DenseSums { get; private set; }

    /// <summary>Means of the dense network's input (<see cref="Means"/> when none were collected).</summary>
    public double[] DenseMeans() => DenseSums is null ? Means() : DenseSums.Select(sum => Samples == 0 ? 0 : sum / Samples).ToArray();

    /// <summary>Adds the dense network's activations for the image last passed to <see cref="Add"/>: sums, d d^T and d p^T.</summary>
    public void AddCross(ReadOnlySpan<float> dense, ReadOnlySpan<float> pruned, int pixels)
    {
        DenseSums ??= new double[Channels];
        CrossMoment ??= new double[Channels * Channels];
        _denseSecondMoment ??= new double[Channels * Channels];
        AddSymmetric(_denseSecondMoment, dense, pixels);
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0;
            foreach (float value in dense.Slice(c * pixels, pixels)) sum += value;
            DenseSums[c] += sum;
        }
        for (int i = 0; i < Channels; i++)
        {
            var planeI = dense.Slice(i * pixels, pixels);
            for (int j = 0; j < Channels; j++) CrossMoment[i * Channels + j] += Dot(planeI, pruned.Slice(j * pixels, pixels));
        }
    }

    /// <summary>Mean of each channel over all samples (zeros before any sample).</summary>
    public double[] Means() => Sums.Select(sum => Samples == 0 ? 0 : sum / Samples).ToArray();

    /// <summary>Adds one image's activations: <paramref name="planes"/> holds Channels planes of <paramref name="pixels"/> values each (CHW).</summary>
    public void Add(ReadOnlySpan<float> planes, int pixels)
    {
        if (planes.Length != Channels * pixels) throw new ArgumentException($"expected {Channels} x {pixels} values, got {planes.Length}");
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0;
            foreach (float value in planes.Slice(c * pixels, pixels)) sum += value;
            Sums[c] += sum;
        }
        Samples += pixels;
        if (SecondMoment is { } moment) AddSymmetric(moment, planes, pixels);
    }

    /// <summary>moment += X X^T for one image's planes (Channels x pixels).</summary>
    private void AddSymmetric(double[] moment, ReadOnlySpan<float> planes, int pixels)
    {
        for (int i = 0; i < Channels; i++)
        {
            var planeI = planes.Slice(i * pixels, pixels);
            for (int j = 0; j <= i; j++)
            {
                double dot = Dot(planeI, planes.Slice(j * pixels, pixels));
                moment[i * Channels + j] += dot;
                if (i != j) moment[j * Channels + i] += dot;
            }
        }
    }

    /// <summary>Sum over samples of d d^T of the dense network's input, when collected with <see cref="AddCross"/>
    /// (<see cref="SecondMoment"/> when none were: until a layer changes, the inputs are the dense network's).</summary>
    public double[]? DenseSecondMoment => _denseSecondMoment ?? SecondMoment;

    private double[]? _denseSecondMoment;

    /// <summary>Float dot product summed in double per vector block of 256, so long planes keep their precision.</summary>
    private static double Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double total = 0;
        int i = 0;
        const int Chunk = 256;
        if (Vector.IsHardwareAccelerated)
        {
            while (i <= x.Length - Vector<float>.Count)
            {
                var acc = Vector<float>.Zero;
                int end = Math.Min(x.Length - Vector<float>.Count, i + Chunk);
                for (; i <= end; i += Vector<float>.Count) acc += new Vector<float>(x[i..]) * new Vector<float>(y[i..]);
                total += Vector.Sum(acc);
            }
        }
        for (; i < x.Length; i++) total += (double)x[i] * y[i];
        return total;
    }
}
