using System.Runtime.InteropServices;
using Microsoft.ML.Sparse.Onnx.Pruning;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Onnx.Synthetic;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>OnnxPruner on generated models, checked by decoding the written file independently and scoring it with ONNX Runtime.</summary>
public class PruningTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly byte[] DenseV1 = SyntheticMobileNet.Create(GeneratedVariants.Get("v1_w025_r64"));

    [Theory]
    [InlineData(0.5f, 1)]
    [InlineData(0.7f, 1)]
    [InlineData(0.9f, 1)]
    [InlineData(0.9f, 2)]
    [InlineData(0.75f, 4)]
    public void PerLayerPruningHitsTheTargetInEveryPrunableLayerAndLeavesTheRestAlone(float target, int block)
    {
        var report = OnnxPruner.Prune(DenseV1, out byte[] pruned, new PruningOptions { TargetSparsity = target, BlockSize = block }, cancellationToken: Ct);
        var before = ModelWeights.Read(DenseV1);
        var after = ModelWeights.Read(pruned);

        foreach (var layer in ModelWeights.Layers(DenseV1))
        {
            float[] original = before[layer.Weight], result = after[layer.Weight];
            if (layer.Prunable)
            {
                double sparsity = ModelWeights.Sparsity(result);
                Assert.InRange(sparsity, target - 0.5 * block / result.Length, target + 0.5 * block / result.Length);
                ModelWeights.AssertOnlyZeroedAndKeptLargest(original, result, layer, block);
            }
            else
            {
                Assert.Equal(original, result);
            }
        }
        Assert.Equal(28, report.Layers.Count);
        Assert.Equal(14, report.Layers.Count(l => l.Pruned));
    }

    [Theory]
    [InlineData(SyntheticClassifier.Gemm)]
    [InlineData(SyntheticClassifier.MatMulAdd)]
    public void ClassCountNotDivisibleByTheBlockLeavesAPartialBlockScoredByItsRms(SyntheticClassifier classifier)
    {
        byte[] model = SyntheticMobileNet.Create(new SyntheticMobileNetOptions { WidthMultiplier = 0.25f, Resolution = 32, Classes = 1001, Classifier = classifier });
        OnnxPruner.Prune(model, out byte[] pruned, new PruningOptions { TargetSparsity = 0.75f, BlockSize = 4 }, cancellationToken: Ct);

        var layer = ModelWeights.Layers(model)[^1];
        float[] original = ModelWeights.Read(model)[layer.Weight], result = ModelWeights.Read(pruned)[layer.Weight];
        Assert.Equal(1001, layer.OutChannels);
        Assert.InRange(ModelWeights.Sparsity(result), 0.75 - 2.0 / result.Length, 0.75 + 2.0 / result.Length);
        ModelWeights.AssertOnlyZeroedAndKeptLargest(original, result, layer, 4);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void GlobalPruningUsesOneThresholdAcrossLayers(int block)
    {
        const float target = 0.8f;
        var report = OnnxPruner.Prune(DenseV1, out byte[] pruned, new PruningOptions { TargetSparsity = target, Scope = PruningScope.Global, BlockSize = block }, cancellationToken: Ct);
        var before = ModelWeights.Read(DenseV1);
        var after = ModelWeights.Read(pruned);
        var prunable = ModelWeights.Layers(DenseV1).Where(l => l.Prunable).ToList();

        long total = prunable.Sum(l => (long)after[l.Weight].Length);
        long zeros = prunable.Sum(l => after[l.Weight].LongCount(v => v == 0f));
        Assert.InRange((double)zeros / total, target - 0.5 * block / total, target + 0.5 * block / total);
        Assert.Equal((double)zeros / total, report.PrunedLayersSparsity, 9);

        // One threshold: no pruned unit anywhere outscores a kept unit anywhere.
        var units = prunable.SelectMany(l => ModelWeights.Units(before[l.Weight], after[l.Weight], l, block)).ToList();
        float largestPruned = units.Where(u => u.Pruned).Max(u => u.Score);
        float smallestKept = units.Where(u => !u.Pruned).Min(u => u.Score);
        Assert.True(largestPruned <= smallestKept, $"pruned score {largestPruned} > kept score {smallestKept}");
        // Layers differ in weight scale, so a global threshold prunes them unevenly.
        var sparsities = prunable.Select(l => ModelWeights.Sparsity(after[l.Weight])).ToList();
        Assert.True(sparsities.Max() - sparsities.Min() > 0.05, "global pruning gave every layer the same sparsity");
    }

    /// <summary>
    /// The Erdős-Rényi-Kernel split against a plain reference: the density scale found by bisection over
    /// sum_l min(N_l, eps * sum(dims_l)) = (1 - target) * sum_l N_l, on random layer shapes (1x1, kxk, Gemm) and targets.
    /// </summary>
    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.7)]
    [InlineData(0.9)]
    [InlineData(0.99)]
    [InlineData(1.0)]
    public void ErdosRenyiSparsitiesMatchABisectionReferenceAndHoldTheTotal(double target)
    {
        var random = new Random((int)(target * 1000) + 7);
        for (int trial = 0; trial < 50; trial++)
        {
            var shapes = Enumerable.Range(0, random.Next(1, 12)).Select(_ => random.Next(3) switch
            {
                0 => new long[] { random.Next(1, 1100), random.Next(1, 1100), 1, 1 },
                1 => new long[] { random.Next(1, 200), random.Next(1, 64), 3, 3 },
                _ => new long[] { random.Next(1, 1100), random.Next(1, 1100) },
            }).ToList();
            double[] sparsities = PruningUnits.ErdosRenyiSparsities(shapes, target);

            double[] weights = shapes.Select(s => s.Aggregate(1.0, (p, d) => p * d)).ToArray();
            double[] sums = shapes.Select(s => (double)s.Sum()).ToArray();
            double budget = (1 - target) * weights.Sum();
            double Kept(double eps) => weights.Select((n, l) => Math.Min(n, eps * sums[l])).Sum();
            double low = 0, high = weights.Zip(sums, (n, d) => n / d).Max();
            for (int i = 0; i < 200; i++) { double mid = (low + high) / 2; if (Kept(mid) < budget) low = mid; else high = mid; }
            for (int l = 0; l < shapes.Count; l++)
            {
                double expected = 1 - Math.Min(1, high * sums[l] / weights[l]);
                Assert.InRange(sparsities[l], expected - 1e-6, expected + 1e-6);
            }
            double nonzeros = weights.Select((n, l) => n * (1 - sparsities[l])).Sum();
            Assert.InRange(nonzeros, budget - 1e-6 * weights.Sum() - 1e-9, budget + 1e-6 * weights.Sum() + 1e-9);
        }
    }

    [Fact]
    public void ErdosRenyiScopeKeepsSmallLayersDenserAndHoldsTheTotal()
    {
        const float target = 0.8f;
        var report = OnnxPruner.Prune(DenseV1, out byte[] pruned, new PruningOptions { TargetSparsity = target, Scope = PruningScope.ErdosRenyi }, cancellationToken: Ct);
        var after = ModelWeights.Read(pruned);
        var layers = report.Layers.Where(l => l.Pruned).ToList();
        long total = layers.Sum(l => l.Elements);
        long zeros = layers.Sum(l => after[l.WeightName].LongCount(v => v == 0f));
        // Each layer rounds its own target to whole weights: the total is within one weight per layer of it.
        Assert.InRange((double)zeros / total, target - (double)layers.Count / total, target + (double)layers.Count / total);
        Assert.Equal((double)zeros / total, report.PrunedLayersSparsity, 9);
        // Sparsity grows with the layer's weights per unit of dimension, as the rule says.
        var bySize = layers.Select(l => (PerDimension: l.Elements / (double)l.Shape.Sum(), l.SparsityAfter)).OrderBy(x => x.PerDimension).ToList();
        for (int i = 1; i < bySize.Count; i++)
            Assert.True(bySize[i].SparsityAfter >= bySize[i - 1].SparsityAfter - 0.01, $"layer {i}: {bySize[i].SparsityAfter} after {bySize[i - 1].SparsityAfter}");
        Assert.True(bySize[^1].SparsityAfter - bySize[0].SparsityAfter > 0.05, "every layer got the same sparsity");
    }

    [Fact]
    public void OptionsIncludeFirstAndDepthwiseConvolutionsAndExcludeTheClassifier()
    {
        var options = new PruningOptions { TargetSparsity = 0.6f, IncludeFirstConvolution = true, IncludeDepthwise = true, IncludeClassifier = false, BlockSize = 4 };
        var report = OnnxPruner.Prune(DenseV1, out byte[] pruned, options, cancellationToken: Ct);
        var after = ModelWeights.Read(pruned);
        var before = ModelWeights.Read(DenseV1);
        foreach (var layer in ModelWeights.Layers(DenseV1))
        {
            if (layer.Kind == WeightLayerKind.Classifier)
            {
                Assert.Equal(before[layer.Weight], after[layer.Weight]);
                continue;
            }
            // Depthwise layers ignore the block size: their output channels share no input channel.
            int block = layer.Kind == WeightLayerKind.Depthwise ? 1 : 4;
            Assert.InRange(ModelWeights.Sparsity(after[layer.Weight]), 0.6 - 0.5 * block / after[layer.Weight].Length, 0.6 + 0.5 * block / after[layer.Weight].Length);
        }
        Assert.Equal(WeightLayerKind.FullConvolution, report.Layers[0].Kind);
        Assert.True(report.Layers[0].Pruned);
        Assert.False(report.Layers[^1].Pruned);
        Assert.Contains("IncludeClassifier", report.Layers[^1].Note);
    }

    [Theory]
    [InlineData("v1_w025_r64")]
    [InlineData("v2_batch_n3_shape_gather")]
    [InlineData("v1_sparse_initializer_80")]
    [InlineData("v3small_conv_head_identity_weights")]
    [InlineData("v1_opset7_clip_attributes")]
    public void ZeroSparsityRewritesAFileThatScoresIdentically(string variant)
    {
        var options = GeneratedVariants.Get(variant);
        byte[] model = SyntheticMobileNet.Create(options);
        var report = OnnxPruner.Prune(model, out byte[] pruned, new PruningOptions { TargetSparsity = 0f }, cancellationToken: Ct);

        int batch = GeneratedVariants.BatchOf(options);
        float[] input = GeneratedVariants.RandomImages(options, batch, seed: 5);
        int[] shape = GeneratedVariants.InputShape(options, batch);
        Assert.Equal(GeneratedVariants.ScoreWithOnnxRuntime(model, input, shape), GeneratedVariants.ScoreWithOnnxRuntime(pruned, input, shape));
        Assert.All(report.Layers, layer => Assert.Equal(layer.NonzerosBefore, layer.NonzerosAfter));
        Assert.Equal(ModelWeights.Read(model), ModelWeights.Read(pruned));
    }

    [Theory]
    [InlineData("v1_sparse_initializer_80", 0.9f, 1)]
    [InlineData("v2_batch_n3_shape_gather", 0.9f, 2)]
    [InlineData("v3small_conv_head_identity_weights", 0.7f, 2)]
    [InlineData("efficientnet_b0_w025_r64", 0.9f, 4)]
    public void PrunedFileKeepsGraphOpsetsAndEncodingsAndRunsInOnnxRuntime(string variant, float target, int block)
    {
        var options = GeneratedVariants.Get(variant);
        byte[] model = SyntheticMobileNet.Create(options);
        var report = OnnxPruner.Prune(model, out byte[] pruned, new PruningOptions { TargetSparsity = target, BlockSize = block }, cancellationToken: Ct);

        var source = ModelProto.Parser.ParseFrom(model);
        var result = ModelProto.Parser.ParseFrom(pruned);
        Assert.Equal(source.OpsetImport, result.OpsetImport);
        Assert.Equal(source.IrVersion, result.IrVersion);
        Assert.Equal(source.Graph.Node, result.Graph.Node);
        Assert.Equal(source.Graph.Input, result.Graph.Input);
        Assert.Equal(source.Graph.Output, result.Graph.Output);
        Assert.Equal(source.Graph.Initializer.Select(t => (t.Name, t.HasRawData, t.FloatData.Count, string.Join(",", t.Dims))),
            result.Graph.Initializer.Select(t => (t.Name, t.HasRawData, t.FloatData.Count, string.Join(",", t.Dims))));
        Assert.Equal(source.Graph.SparseInitializer.Select(s => (s.Values.Name, string.Join(",", s.Dims))),
            result.Graph.SparseInitializer.Select(s => (s.Values.Name, string.Join(",", s.Dims))));
        // A sparse initializer stores only what survives.
        foreach (var sparse in result.Graph.SparseInitializer)
            Assert.Equal(sparse.Values.RawData.Length / 4, ModelWeights.Read(pruned)[sparse.Values.Name].Count(v => v != 0f));

        Assert.All(report.Layers.Where(l => l.Kind is WeightLayerKind.Pointwise), layer =>
        {
            Assert.True(layer.Pruned, layer.Name);
            Assert.InRange(layer.SparsityAfter, target - 0.5 * block / layer.Elements, target + 0.5 * block / layer.Elements);
        });
        int batch = GeneratedVariants.BatchOf(options);
        float[] output = GeneratedVariants.ScoreWithOnnxRuntime(pruned, GeneratedVariants.RandomImages(options, batch, seed: 6), GeneratedVariants.InputShape(options, batch));
        Assert.All(output, value => Assert.True(float.IsFinite(value)));
    }

    [Theory]
    [InlineData("mobilenet_v1_1.0_224.onnx", PruningScope.PerLayer, 4)]
    [InlineData("mobilenet_v2_1.0_224.onnx", PruningScope.Global, 1)]
    [InlineData("mobilenetv2-12.onnx", PruningScope.PerLayer, 2)]
    public void PrunedRealModelRunsInTheSparseEngineAsInOnnxRuntime(string modelFile, PruningScope scope, int block)
    {
        string path = SharedData.Require("models/" + modelFile);
        var report = OnnxPruner.Prune(File.ReadAllBytes(path), out byte[] pruned, new PruningOptions { TargetSparsity = 0.9f, Scope = scope, BlockSize = block }, cancellationToken: Ct);
        Assert.InRange(report.PrunedLayersSparsity, 0.89, 0.95);

        var random = new Random(8);
        float[] image = Enumerable.Range(0, 3 * 224 * 224).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] expected = GeneratedVariants.ScoreWithOnnxRuntime(pruned, image, [1, 3, 224, 224]);
        var model = SparseModel.Load(pruned, new SparseModelOptions { Threads = 2 }, Ct);
        var actual = new float[model.OutputLength];
        model.Run(image, actual, model.CreateWorkspace());

        double largest = expected.Max(Math.Abs);
        double error = expected.Zip(actual).Max(pair => Math.Abs(pair.First - pair.Second));
        Assert.True(error <= 1e-4 * largest, $"max |ours - ORT| = {error:G3}, {error / largest:G3} of max |ORT|");
        Assert.Equal(Array.IndexOf(expected, expected.Max()), Array.IndexOf(actual, actual.Max()));
    }

    [Fact]
    public void FloatDataEncodingIsKept()
    {
        var model = ModelProto.Parser.ParseFrom(DenseV1);
        foreach (var tensor in model.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float))
        {
            float[] values = MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray();
            tensor.ClearRawData();
            tensor.FloatData.AddRange(values);
        }
        byte[] floatDataModel = Google.Protobuf.MessageExtensions.ToByteArray(model);
        OnnxPruner.Prune(floatDataModel, out byte[] pruned, new PruningOptions { TargetSparsity = 0.5f }, cancellationToken: Ct);

        var result = ModelProto.Parser.ParseFrom(pruned);
        Assert.All(result.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float), t => Assert.False(t.HasRawData));
        Assert.Equal(ModelWeights.Read(PrunedTo(DenseV1, 0.5f)), ModelWeights.Read(pruned));
    }

    [Fact]
    public void TorchWeightOrigTimesMaskPrunesTheProductIntoTheMask()
    {
        var graph = new OnnxGraphBuilder("masked", 13);
        var random = new Random(3);
        float[] orig = Enumerable.Range(0, 16 * 8).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] mask = Enumerable.Range(0, orig.Length).Select(i => i % 5 == 0 ? 0f : 1f).ToArray();
        graph.Input("x", 1, 1, 8, 4, 4);
        string weight = graph.Node("Mul", [graph.FloatInitializer("weight_orig", [16, 8, 1, 1], orig), graph.FloatInitializer("weight_mask", [16, 8, 1, 1], mask)]);
        graph.Node("Conv", ["x", weight], "conv", OnnxGraphBuilder.Ints("kernel_shape", 1, 1));
        graph.Graph.Node[^1].Output[0] = "y";
        graph.Output("y", 1, 1, 16, 4, 4);
        byte[] model = Google.Protobuf.MessageExtensions.ToByteArray(graph.ToModel(7, "test"));

        var report = OnnxPruner.Prune(model, out byte[] pruned, new PruningOptions { TargetSparsity = 0.5f }, cancellationToken: Ct);

        var weights = ModelWeights.Read(pruned);
        Assert.Equal(orig, weights["weight_orig"]);
        float[] newMask = weights["weight_mask"];
        Assert.Equal(64, newMask.Count(v => v == 0f));
        Assert.All(Enumerable.Range(0, mask.Length), i => Assert.True(mask[i] == 1f || newMask[i] == 0f, "a masked weight came back"));
        // The smallest effective weights went: every product kept outweighs every product pruned.
        float largestPruned = Enumerable.Range(0, orig.Length).Where(i => newMask[i] == 0f).Max(i => Math.Abs(orig[i] * mask[i]));
        float smallestKept = Enumerable.Range(0, orig.Length).Where(i => newMask[i] != 0f).Min(i => Math.Abs(orig[i]));
        Assert.True(largestPruned <= smallestKept);
        Assert.Equal("weight_orig * weight_mask", report.Layers.Single().WeightName);
        Assert.Contains("mask 'weight_mask'", report.Layers.Single().Note);
        Assert.All(GeneratedVariants.ScoreWithOnnxRuntime(pruned, new float[128], [1, 8, 4, 4]), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void ReportListsEveryWeightLayerWithShapesSparsityAndReasons()
    {
        var report = OnnxPruner.Prune(DenseV1, out _, new PruningOptions { TargetSparsity = 0.9f, BlockSize = 4 }, cancellationToken: Ct);
        var layers = ModelWeights.Layers(DenseV1);

        Assert.Equal(layers.Select(l => l.Node), report.Layers.Select(l => l.Name));
        Assert.Equal(layers.Select(l => l.Kind), report.Layers.Select(l => l.Kind));
        var first = report.Layers[0];
        Assert.Equal([8L, 3, 3, 3], first.Shape);
        Assert.False(first.Pruned);
        Assert.Contains("IncludeFirstConvolution", first.Note);
        Assert.Equal(216, first.NonzerosAfter);
        var classifier = report.Layers[^1];
        Assert.Equal(("Gemm", WeightLayerKind.Classifier, true), (classifier.OpType, classifier.Kind, classifier.Pruned));
        Assert.Equal(classifier.Elements - classifier.NonzerosAfter, (long)Math.Round(0.9 * classifier.Elements / 4) * 4);

        string table = report.ToString();
        Assert.All(report.Layers, layer => Assert.Contains(layer.Name, table));
        Assert.Contains("90.0%", table);
        Assert.Contains("blocks of 4 output channels", table);
        Assert.Equal(report.Layers.Count + 3, table.TrimEnd('\n').Split('\n').Length);
    }

    [Fact]
    public void ReportTableShortensConverterFusedNames()
    {
        var graph = new OnnxGraphBuilder("long_names", 13);
        graph.Input("x", 1, 1, 8, 2, 2);
        string weight = graph.FloatInitializer("w", [4, 8, 1, 1], Enumerable.Range(1, 32).Select(i => (float)i).ToArray());
        string fusedName = "Block_1_pointwise_Relu6;" + string.Join(";", Enumerable.Repeat("Block_1_pointwise_BatchNorm_Fold", 8));
        graph.Node("Conv", ["x", weight], fusedName);
        graph.Graph.Node[^1].Output[0] = "y";
        graph.Output("y", 1, 1, 4, 2, 2);
        byte[] model = Google.Protobuf.MessageExtensions.ToByteArray(graph.ToModel(7, "test"));

        var report = OnnxPruner.Prune(model, out _, new PruningOptions { TargetSparsity = 0.25f }, cancellationToken: Ct);

        Assert.Equal(fusedName, report.Layers.Single().Name);
        string table = report.ToString();
        Assert.Contains("Block_1_pointwise_Relu6 ", table);
        Assert.DoesNotContain("BatchNorm_Fold", table);
        // The smallest quarter of 1..32 is 1..8.
        Assert.Equal(24, report.Layers.Single().NonzerosAfter);
    }

    [Fact]
    public void CancelledPruningWritesNothing()
    {
        string input = Path.GetTempFileName(), output = input + ".pruned.onnx";
        try
        {
            File.WriteAllBytes(input, DenseV1);
            using var cancelled = new CancellationTokenSource();
            cancelled.Cancel();
            Assert.ThrowsAny<OperationCanceledException>(() => OnnxPruner.Prune(input, output, new PruningOptions(), cancelled.Token));
            Assert.False(File.Exists(output));

            var report = OnnxPruner.Prune(input, output, new PruningOptions { TargetSparsity = 0.5f }, cancellationToken: Ct);
            Assert.Equal(ModelWeights.Read(PrunedTo(DenseV1, 0.5f)), ModelWeights.Read(File.ReadAllBytes(output)));
            Assert.Equal(14, report.Layers.Count(l => l.Pruned));
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    private static byte[] PrunedTo(byte[] model, float target)
    {
        OnnxPruner.Prune(model, out byte[] pruned, new PruningOptions { TargetSparsity = target }, cancellationToken: Ct);
        return pruned;
    }

    [Theory]
    [InlineData(3, 0.5f)]
    [InlineData(1, 1.5f)]
    [InlineData(1, -0.1f)]
    public void InvalidOptionsAreRejected(int block, float target) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => OnnxPruner.Prune(DenseV1, out _, new PruningOptions { BlockSize = block, TargetSparsity = target }, cancellationToken: Ct));

    [Fact]
    public void GarbageInputIsAnInvalidOnnxModel() =>
        Assert.Throws<InvalidOnnxModelException>(() => OnnxPruner.Prune(new byte[] { 1, 2, 3, 4, 5 }, out _, cancellationToken: Ct));
}

/// <summary>Test-side decoding of weights and the role of each weight layer, written independently of the pruner.</summary>
internal static class ModelWeights
{
    public sealed record Layer(string Node, string Weight, WeightLayerKind Kind, int OutChannels, int OutStride, int Inner, int InnerStride)
    {
        public bool Prunable => Kind is WeightLayerKind.Pointwise or WeightLayerKind.FullyConnected or WeightLayerKind.Classifier;
    }

    public readonly record struct Unit(float Score, bool Pruned);

    /// <summary>Every float initializer (dense or sparse) as a dense array.</summary>
    public static Dictionary<string, float[]> Read(byte[] modelBytes)
    {
        var graph = ModelProto.Parser.ParseFrom(modelBytes).Graph;
        var weights = new Dictionary<string, float[]>();
        foreach (var tensor in graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float))
            weights[tensor.Name] = tensor.HasRawData ? MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray() : tensor.FloatData.ToArray();
        foreach (var sparse in graph.SparseInitializer)
        {
            var dense = new float[sparse.Dims.Aggregate(1L, (p, d) => p * d)];
            float[] values = MemoryMarshal.Cast<byte, float>(sparse.Values.RawData.Span).ToArray();
            for (int i = 0; i < values.Length; i++) dense[sparse.Indices.Int64Data[i]] = values[i];
            weights[sparse.Values.Name] = dense;
        }
        return weights;
    }

    /// <summary>The Conv/Gemm/MatMul layers of a generated model; weights may sit behind one Identity.</summary>
    public static List<Layer> Layers(byte[] modelBytes)
    {
        var graph = ModelProto.Parser.ParseFrom(modelBytes).Graph;
        var identities = graph.Node.Where(n => n.OpType == "Identity").ToDictionary(n => n.Output[0], n => n.Input[0]);
        var dims = graph.Initializer.ToDictionary(t => t.Name, t => t.Dims.ToArray());
        foreach (var sparse in graph.SparseInitializer) dims[sparse.Values.Name] = sparse.Dims.ToArray();
        var layers = new List<Layer>();
        foreach (var node in graph.Node.Where(n => n.OpType is "Conv" or "Gemm" or "MatMul"))
        {
            string weight = identities.GetValueOrDefault(node.Input[1], node.Input[1]);
            long[] shape = dims[weight];
            if (node.OpType == "Conv")
            {
                long group = node.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1;
                var kind = group > 1 ? WeightLayerKind.Depthwise : shape[2] * shape[3] == 1 ? WeightLayerKind.Pointwise : WeightLayerKind.FullConvolution;
                int inner = (int)(shape[1] * shape[2] * shape[3]);
                layers.Add(new(node.Name, weight, kind, (int)shape[0], inner, inner, 1));
            }
            else
            {
                bool transposed = node.Attribute.Any(a => a.Name == "transB" && a.I == 1);
                layers.Add(transposed
                    ? new(node.Name, weight, WeightLayerKind.FullyConnected, (int)shape[0], (int)shape[1], (int)shape[1], 1)
                    : new(node.Name, weight, WeightLayerKind.FullyConnected, (int)shape[1], 1, (int)shape[0], (int)shape[1]));
            }
        }
        layers[^1] = layers[^1] with { Kind = WeightLayerKind.Classifier };
        return layers;
    }

    public static double Sparsity(float[] values) => (double)values.Count(v => v == 0f) / values.Length;

    /// <summary>Blocks of <paramref name="block"/> output channels at one inner position, with their L2 (RMS) score in the original weight.</summary>
    public static IEnumerable<Unit> Units(float[] original, float[] pruned, Layer layer, int block)
    {
        for (int first = 0; first < layer.OutChannels; first += block)
        {
            for (int inner = 0; inner < layer.Inner; inner++)
            {
                var positions = Enumerable.Range(first, Math.Min(block, layer.OutChannels - first)).Select(c => c * layer.OutStride + inner * layer.InnerStride).ToList();
                bool allZero = positions.All(p => pruned[p] == 0f);
                Assert.True(allZero || positions.All(p => pruned[p] == original[p]), $"{layer.Node}: block at channel {first}, inner {inner} is half pruned");
                yield return new Unit((float)Math.Sqrt(positions.Average(p => (double)original[p] * original[p])), allZero);
            }
        }
    }

    /// <summary>Weights are only ever zeroed, in whole blocks, and no pruned block outscores a kept one within the layer.</summary>
    public static void AssertOnlyZeroedAndKeptLargest(float[] original, float[] pruned, Layer layer, int block)
    {
        var units = Units(original, pruned, layer, block).ToList();
        float largestPruned = units.Where(u => u.Pruned).Select(u => u.Score).DefaultIfEmpty(0f).Max();
        float smallestKept = units.Where(u => !u.Pruned).Select(u => u.Score).DefaultIfEmpty(float.MaxValue).Min();
        Assert.True(largestPruned <= smallestKept, $"{layer.Node}: pruned score {largestPruned} > kept score {smallestKept}");
    }
}
