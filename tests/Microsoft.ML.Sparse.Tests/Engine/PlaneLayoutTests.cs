namespace Microsoft.ML.Sparse.Tests.Engine;

/// <summary>
/// Padded channel planes (<see cref="PlaneLayout"/>): which tensors get them, that the arena sizes them, and that the
/// padding, whatever it holds, never reaches a real pixel.
/// </summary>
public sealed class PlaneLayoutTests
{
    [Fact]
    public void ArenaTensorsWithRaggedPlanesArePaddedToCacheLines()
    {
        var random = new Random(1);
        var builder = new SparseNetworkBuilder(8, 14, 14);
        TensorHandle dw = builder.DepthwiseConv(builder.Input, Values(random, 8 * 9), Values(random, 8), 3, 3, padding: Padding.Uniform(1));
        TensorHandle pw = builder.Pointwise(dw, Values(random, 16 * 8), Values(random, 16), 16, Activation.Relu6);
        TensorHandle down = builder.DepthwiseConv(pw, Values(random, 16 * 9), Values(random, 16), 3, 3, strideHeight: 2, strideWidth: 2, padding: Padding.Uniform(1));
        TensorHandle pw2 = builder.Pointwise(down, Values(random, 16 * 16), Values(random, 16), 16);
        TensorHandle pooled = builder.GlobalAveragePool(pw2);
        TensorHandle logits = builder.FullyConnected(pooled, Values(random, 5 * 16), Values(random, 5), 5);
        // One thread, so no 1x1 + depthwise pair hides the tensors between them.
        SparseNetwork network = builder.Build(logits, new SparseNetworkOptions { Threads = 1 });

        Assert.Equal(196, network.PlaneStrides[builder.Input.Id]);     // the caller's input stays dense
        Assert.Equal(208, network.PlaneStrides[dw.Id]);
        Assert.Equal(208, network.PlaneStrides[pw.Id]);
        Assert.Equal(64, network.PlaneStrides[down.Id]);                // 7x7
        Assert.Equal(64, network.PlaneStrides[pw2.Id]);
        Assert.Equal(1, network.PlaneStrides[pooled.Id]);
        Assert.Equal(1, network.PlaneStrides[logits.Id]);
        // The arena holds the padded tensors: two 16 x 208 planes live at once at least.
        Assert.True(network.ActivationFloats >= 8 * 208 + 16 * 208, $"arena {network.ActivationFloats} floats");
    }

    [Fact]
    public void TensorsReadFlatAndTheirElementwisePartnersStayDense()
    {
        var random = new Random(2);
        var builder = new SparseNetworkBuilder(4, 7, 7);
        TensorHandle a = builder.Pointwise(builder.Input, Values(random, 6 * 4), [], 6);
        TensorHandle b = builder.Pointwise(builder.Input, Values(random, 6 * 4), [], 6);
        TensorHandle sum = builder.Add(a, b);
        TensorHandle kept = builder.Pointwise(builder.Input, Values(random, 6 * 4), [], 6);
        TensorHandle activated = builder.Activate(kept, Activation.Relu);
        TensorHandle both = builder.Add(builder.FullyConnected(sum, Values(random, 3 * 6 * 49), [], 3),
            builder.FullyConnected(activated, Values(random, 3 * 6 * 49), [], 3));
        SparseNetwork network = builder.Build(both);

        // sum is flattened into a fully connected layer, and a and b share the Add with it.
        Assert.Equal(49, network.PlaneStrides[sum.Id]);
        Assert.Equal(49, network.PlaneStrides[a.Id]);
        Assert.Equal(49, network.PlaneStrides[b.Id]);
        // kept feeds an activation whose output is flattened: the elementwise group stays dense as a whole.
        Assert.Equal(49, network.PlaneStrides[kept.Id]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void WhateverThePaddingHolds_RealPixelsAreUnchanged(int threads)
    {
        // A v2-like 14x14 / 7x7 tail with a residual add, squeeze-and-excitation and HardSwish; a NaN image first leaves
        // NaN in every padding float of the arena, and the next image must still score exactly as on a fresh workspace.
        var random = new Random(3);
        var builder = new SparseNetworkBuilder(24, 14, 14);
        TensorHandle expand = builder.Pointwise(builder.Input, Sparse(random, 48 * 24, 0.7f), Values(random, 48), 48, Activation.Relu6);
        TensorHandle dw = builder.DepthwiseConv(expand, Values(random, 48 * 9), Values(random, 48), 3, 3, padding: Padding.Uniform(1), activation: Activation.HardSwish);
        TensorHandle project = builder.Pointwise(dw, Sparse(random, 24 * 48, 0.9f), Values(random, 24), 24, residual: builder.Input);
        TensorHandle added = builder.Add(project, builder.Pointwise(project, Sparse(random, 24 * 24, 0.5f), [], 24));
        TensorHandle down = builder.DepthwiseConv(added, Values(random, 24 * 25), Values(random, 24), 5, 5, strideHeight: 2, strideWidth: 2, padding: Padding.Uniform(2));
        TensorHandle squeeze = builder.Pointwise(builder.GlobalAveragePool(down), Values(random, 24 * 24), Values(random, 24), 24, Activation.Sigmoid);
        TensorHandle excited = builder.Multiply(down, squeeze);
        TensorHandle features = builder.Pointwise(excited, Sparse(random, 40 * 24, 0.8f), Values(random, 40), 40, Activation.Swish);
        TensorHandle logits = builder.FullyConnected(builder.GlobalAveragePool(features), Values(random, 10 * 40), Values(random, 10), 10);
        SparseNetwork network = builder.Build(logits, new SparseNetworkOptions { Threads = threads });
        Assert.Contains(network.PlaneStrides, stride => stride == 208);
        Assert.Contains(network.PlaneStrides, stride => stride == 64);

        float[] image = Values(random, network.InputShape.Length), nanImage = new float[image.Length];
        Array.Fill(nanImage, float.NaN);
        float[] fresh = new float[10], reused = new float[10], poisoned = new float[10];
        using (SparseWorkspace workspace = network.CreateWorkspace()) network.Run(image, fresh, workspace);
        using (SparseWorkspace workspace = network.CreateWorkspace())
        {
            network.Run(nanImage, poisoned, workspace);
            network.Run(image, reused, workspace);
        }
        Assert.All(poisoned, value => Assert.True(float.IsNaN(value)));
        Assert.Equal(fresh, reused);
        Assert.All(fresh, value => Assert.True(float.IsFinite(value)));
    }

    private static float[] Values(Random random, int count) => ScalarReference.Random(random, count);

    private static float[] Sparse(Random random, int count, float sparsity)
    {
        float[] values = Values(random, count);
        for (int i = 0; i < count; i++)
            if (random.NextSingle() < sparsity) values[i] = 0f;
        return values;
    }
}
