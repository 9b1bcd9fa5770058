namespace Microsoft.ML.Sparse;

/// <summary>How many layers of a plan read each tensor: what fusing a layer into the one that reads its output must check.</summary>
internal sealed class TensorReaders
{
    private readonly Dictionary<int, int> _readers = new();
    private readonly int _outputId;

    /// <param name="layers">The plan.</param>
    /// <param name="outputId">The network output, read by the caller, so never fused away.</param>
    public TensorReaders(IEnumerable<PlannedLayer> layers, int outputId)
    {
        _outputId = outputId;
        foreach (PlannedLayer layer in layers)
            foreach (TensorHandle input in layer.Inputs.DistinctBy(t => t.Id)) _readers[input.Id] = _readers.GetValueOrDefault(input.Id) + 1;
    }

    /// <summary>Whether <paramref name="tensor"/> is <paramref name="reader"/>'s first input and nothing else reads it.</summary>
    public bool OnlyReader(TensorHandle tensor, PlannedLayer reader) =>
        tensor.Id != _outputId && reader.Inputs[0].Id == tensor.Id && _readers.GetValueOrDefault(tensor.Id) == 1;
}
