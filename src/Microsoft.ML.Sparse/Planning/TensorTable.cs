namespace Microsoft.ML.Sparse;

/// <summary>What a running layer sees of its workspace: each tensor's buffer and the floats between its channel planes.</summary>
internal readonly unsafe struct TensorTable(float** buffers, int* planeStrides)
{
    public float* this[TensorHandle tensor] => buffers[tensor.Id];

    /// <summary>Floats from one channel plane of <paramref name="tensor"/> to the next (H*W, or more when the plan pads it).</summary>
    public int PlaneStride(TensorHandle tensor) => planeStrides[tensor.Id];
}
