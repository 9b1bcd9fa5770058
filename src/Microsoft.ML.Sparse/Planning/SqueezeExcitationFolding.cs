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
/// input (not also as its residual). The result differs from scaling the tensor by rounding only (each product is formed once either way, in another
/// order). Runs after the other plan fusions, which take plain 1x1 layers only.
/// </remarks>
internal static class SqueezeExcitationFolding
{
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
                readers.OnlyReader(scale.Output, consumer) && consumer.Inputs.Count(input => input.Id == scale.Output.Id) == 1)
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
/// Writes a 1x1 layer's stored weights times the per-input-channel scale <c>s</c> (<see cref="Formats.PointwiseWeights.ScaleInputs"/>)
/// into its output tensor, split over the weights' blocks.
/// </summary>
internal sealed unsafe class ScaleWeightsLayer(string name, TensorHandle scale, TensorHandle values, Formats.PointwiseWeights weights)
    : PlannedLayer(name, "ScaleWeights", [scale], values)
{
    public override string KernelName => "scale 1x1 weights per input channel";

    /// <summary>Both tensors are flat vectors.</summary>
    public override bool HandlesPlaneStrides => false;

    public override long DenseMacs => weights.StoredValueCount;

    public override void Run<TVec>(TensorTable tensors, float* scratch, int part, int parts)
    {
        (int start, int end) = WorkSplit.Range(weights.TotalBlocks, part, parts);
        weights.ScaleInputs(InputOf(tensors), OutputOf(tensors), start, end);
    }
}
