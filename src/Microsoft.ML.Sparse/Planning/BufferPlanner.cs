namespace Microsoft.ML.Sparse;

/// <summary>
/// Assigns each intermediate tensor an offset in one arena by liveness: a tensor's block is returned to the free list
/// after its last reader ran, and a layer's output is placed before its inputs are released, so an output never aliases
/// an input it reads.
/// </summary>
internal static class BufferPlanner
{
    /// <summary>Floats between block starts are rounded to this (64 bytes), so every tensor starts cache-line aligned.</summary>
    public const int AlignFloats = 16;

    /// <summary>
    /// Offsets (in floats) indexed by tensor id, -1 for tensors not in the arena (<paramref name="external"/> ones and unused
    /// ones). A tensor takes channels x its <paramref name="planeStrides"/> entry floats.
    /// </summary>
    public static int[] Assign(IReadOnlyList<PlannedLayer> layers, int tensorCount, ISet<int> external, int[] planeStrides, out int arenaFloats)
    {
        int Size(TensorHandle tensor)
        {
            long floats = (long)tensor.Channels * planeStrides[tensor.Id];
            if (floats > SparseNetworkBuilder.MaxTensorFloats)
                throw new NotSupportedException($"A tensor of [{tensor.Channels}, {tensor.Height}, {tensor.Width}] needs {floats} floats with its planes aligned; at most {SparseNetworkBuilder.MaxTensorFloats} are supported.");
            return RoundUp((int)floats);
        }

        var lastReader = new int[tensorCount];
        for (int i = 0; i < layers.Count; i++)
            foreach (TensorHandle input in layers[i].Inputs) lastReader[input.Id] = i;

        var offsets = Enumerable.Repeat(-1, tensorCount).ToArray();
        var free = new List<(int Offset, int Size)>();
        int end = 0;
        for (int i = 0; i < layers.Count; i++)
        {
            TensorHandle output = layers[i].Output;
            if (!external.Contains(output.Id)) offsets[output.Id] = Allocate(free, ref end, Size(output));
            foreach (TensorHandle input in layers[i].Inputs.Distinct())
                if (lastReader[input.Id] == i && offsets[input.Id] >= 0) Release(free, offsets[input.Id], Size(input));
        }
        arenaFloats = end;
        return offsets;
    }

    public static int RoundUp(int floats) => (floats + AlignFloats - 1) / AlignFloats * AlignFloats;

    /// <summary>Best fit among free blocks; otherwise grows a free block at the arena's end, or the arena itself.</summary>
    private static int Allocate(List<(int Offset, int Size)> free, ref int end, int size)
    {
        if ((long)end + size > SparseNetworkBuilder.MaxTensorFloats)
            throw new NotSupportedException($"The network's live activations need more than {SparseNetworkBuilder.MaxTensorFloats} floats; at most that many fit one workspace.");
        int best = -1;
        for (int i = 0; i < free.Count; i++)
            if (free[i].Size >= size && (best < 0 || free[i].Size < free[best].Size)) best = i;
        if (best >= 0)
        {
            (int offset, int available) = free[best];
            if (available == size) free.RemoveAt(best);
            else free[best] = (offset + size, available - size);
            return offset;
        }
        if (free.Count > 0 && free[^1].Offset + free[^1].Size == end)
        {
            int offset = free[^1].Offset;
            free.RemoveAt(free.Count - 1);
            end = offset + size;
            return offset;
        }
        end += size;
        return end - size;
    }

    /// <summary>Returns a block, merging it with free neighbours; the list stays sorted by offset.</summary>
    private static void Release(List<(int Offset, int Size)> free, int offset, int size)
    {
        int index = free.FindIndex(block => block.Offset > offset);
        if (index < 0) index = free.Count;
        free.Insert(index, (offset, size));
        if (index + 1 < free.Count && offset + size == free[index + 1].Offset)
        {
            free[index] = (offset, size + free[index + 1].Size);
            free.RemoveAt(index + 1);
        }
        if (index > 0 && free[index - 1].Offset + free[index - 1].Size == offset)
        {
            free[index - 1] = (free[index - 1].Offset, free[index - 1].Size + free[index].Size);
            free.RemoveAt(index);
        }
    }
}
