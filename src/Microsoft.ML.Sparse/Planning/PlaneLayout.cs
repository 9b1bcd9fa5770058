namespace Microsoft.ML.Sparse;

/// <summary>
/// Chooses how far apart the channel planes of each CHW tensor lie in the arena. Planes whose pixel count is not a whole
/// number of 64-byte cache lines (14x14 = 196, 7x7 = 49) are padded to one, so every channel row of a 1x1 layer starts
/// on a cache line and its tiles are whole aligned vectors: on Zen 4 that took SpMM at 90% sparsity from 37 to 53
/// GFLOP/s on 512 -> 512 @ 14x14 and from 23 to 43 on 1024 -> 1024 @ 7x7.
/// </summary>
/// <remarks>
/// A tensor is padded only when it lives in the arena (the caller's input and output are dense) and every layer that
/// writes or reads it goes through plane strides (<see cref="PlannedLayer.HandlesPlaneStrides"/>). Elementwise layers
/// treat their operands as flat arrays, so all their operands are padded alike or not at all. The padding floats hold
/// whatever the arena held: 1x1 layers compute them like pixels (each pixel only ever feeds itself), and no layer lets
/// them reach a real pixel.
/// </remarks>
internal static class PlaneLayout
{
    /// <summary>Plane strides are rounded up to this many floats (64 bytes).</summary>
    public const int PlaneAlignFloats = 16;

    /// <summary>Floats between channel planes, indexed by tensor id (0 for ids no layer uses).</summary>
    public static int[] Assign(IReadOnlyList<PlannedLayer> layers, int tensorCount, ISet<int> external)
    {
        var tensors = new TensorHandle?[tensorCount];
        var padAllowed = new bool[tensorCount];
        var group = Enumerable.Range(0, tensorCount).ToArray();
        foreach (PlannedLayer layer in layers)
            foreach (TensorHandle tensor in layer.Inputs.Append(layer.Output))
            {
                if (tensors[tensor.Id] == null) padAllowed[tensor.Id] = !external.Contains(tensor.Id);
                tensors[tensor.Id] = tensor;
                padAllowed[tensor.Id] &= layer.HandlesPlaneStrides;
            }
        foreach (PlannedLayer layer in layers)
            if (layer.IsElementwise)
                foreach (TensorHandle input in layer.Inputs) Union(group, input.Id, layer.Output.Id);

        // A group is padded only if every member may be.
        var groupAllowed = Enumerable.Repeat(true, tensorCount).ToArray();
        for (int id = 0; id < tensorCount; id++)
            if (tensors[id] != null && !padAllowed[id]) groupAllowed[Find(group, id)] = false;

        var strides = new int[tensorCount];
        for (int id = 0; id < tensorCount; id++)
        {
            if (tensors[id] is not { } tensor) continue;
            int pixels = tensor.Height * tensor.Width;
            strides[id] = groupAllowed[Find(group, id)] ? Padded(pixels) : pixels;
        }
        return strides;
    }

    /// <summary>The padded stride of a plane of <paramref name="pixels"/>: whole cache lines, except for planes of at most one line.</summary>
    public static int Padded(int pixels) =>
        pixels <= PlaneAlignFloats ? pixels : (int)Math.Min(((long)pixels + PlaneAlignFloats - 1) / PlaneAlignFloats * PlaneAlignFloats, int.MaxValue);

    private static int Find(int[] group, int id)
    {
        while (group[id] != id) id = group[id] = group[group[id]];
        return id;
    }

    private static void Union(int[] group, int a, int b) => group[Find(group, a)] = Find(group, b);
}
