namespace Microsoft.ML.Sparse;

/// <summary>A tensor of a network being built: an id plus its CHW shape (batch excluded).</summary>
public readonly record struct TensorHandle(int Id, int Channels, int Height, int Width)
{
    /// <summary>Number of floats in the tensor.</summary>
    public int Length => Channels * Height * Width;
}
