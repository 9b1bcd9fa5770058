using Microsoft.ML.Sparse.Kernels;

namespace Microsoft.ML.Sparse;

/// <summary>
/// Folds squeeze-and-excitation's per-channel scale into the 1x1 layer that reads it: <c>W (s x) = (W diag(s)) x</c>. The
/// full-tensor pass <c>y[c, p] = x[c, p] s[c]</c> (C x H x W multiplies, a read and a write of the tensor) becomes a
/// <see cref="ScaleWeightsLayer"/> that multiplies the consumer's stored weights by s once per inference (one multiply per
/// stored weight, written to a workspace tensor), and the consumer runs on x with those weights.
/// </summary>
/// <remarks>
/// Applies where a <see cref="ScaleChannelsLayer"/>'s output is read by one plain <see cref="PointwiseLayer"/> only, as its
/// input (not also as its residual), and the consumer's stored weights are few enough (<see cref="CostPerWeight"/>). The result differs from scaling the tensor by rounding only (each product is formed once either way, in another
/// order). Runs after the other plan fusions, which take plain 1x1 layers only.
/// </remarks>
internal static class SqueezeExcitationFolding
{
    /// <summary>
    /// Scaling a stored weight (a gather of its channel's scale) costs about this many times scaling one tensor element
    /// (a streamed multiply), so the fold pays where stored weights x this &lt;= C x H x W. Zen 5, EfficientNet-B0 at 90%,
    /// in inference (contended machine): 0.5 ns per weight against 0.1 ns per element; 144@56x56 scale pass 40 us -> 0.7 us
    /// for 346 weights, 672@14x14 12 -> 5 us, but 1152@7x7 5.5 -> 11 us for 22118 weights (kept as the tensor pass).
    /// </summary>
    public const int CostPerWeight = 4;

    /// <summary>The plan with every foldable scale folded; new tensors (the scaled weights) get ids from <paramref name="tensorCount"/>.</summary>
    public static PlannedLayer[] Fuse(PlannedLayer[] layers, int outputId, ref int tensorCount)
    {
        var readers = new TensorReaders(layers, outputId);
        var result = new List<PlannedLayer>(layers.Length);
        var replaced = new Dictionary<PlannedLayer, PlannedLayer>();
        foreach (PlannedLayer layer in layers)
        {
            if (replaced.Remove(layer, out PlannedLayer? folded))
            {
                result.Add(folded);
                continue;
            }
            if (layer is ScaleChannelsLayer scale &&
                layers.FirstOrDefault(l => l.Inputs.Any(input => input.Id == scale.Output.Id)) is PointwiseLayer { HasScaledWeights: false } consumer &&
                readers.OnlyReader(scale.Output, consumer) && consumer.Inputs.Count(input => input.Id == scale.Output.Id) == 1 &&
                consumer.Weights.StoredValueCount * CostPerWeight <= scale.Output.Length)
            {
                var values = new TensorHandle(tensorCount++, checked((int)consumer.Weights.StoredValueCount), 1, 1);
                result.Add(new ScaleWeightsLayer(scale.Name, scale.Inputs[1], values, consumer.Weights));
                replaced[consumer] = consumer.WithScaledWeights(scale.Inputs[0], values);
                continue;
            }
            result.Add(layer);
        }
        return result.ToArray();
    }
}

/// <summary>
/// Writes a 1x1 layer's stored weights times the per-input-channel scale <c>s</c> into its output tensor, laid out as the
/// stored weights (so the kernel reads them in their place, <see cref="Kernels.PointwiseKernel.Run"/>), split over the weights.
/// </summary>
internal sealed unsafe class ScaleWeightsLayer(string name, TensorHandle scale, TensorHandle values, Formats.PointwiseWeights weights)
    : PlannedLayer(name, "ScaleWeights", [scale], values)
{
    private readonly int[] _rows = weights.InputRowOfEachValue();

    public override string KernelName => "scale 1x1 weights per input channel";

    /// <summary>Both tensors are flat vectors.</summary>
    public override bool HandlesPlaneStrides => false;

    public override long DenseMacs => weights.StoredValueCount;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(_rows.Length, part, parts, 16);
        fixed (int* rows = _rows)
            ElementwiseKernels.ScaleByIndex(weights.Values, rows, InputOf(tensors), OutputOf(tensors), start, end);
        GC.KeepAlive(weights);
    }
}
