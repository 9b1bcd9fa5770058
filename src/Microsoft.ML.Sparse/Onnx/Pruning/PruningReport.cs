using System.Globalization;
using System.Text;

namespace Microsoft.ML.Sparse;

/// <summary>The role of a weight layer, which decides whether <see cref="OnnxPruner"/> prunes it.</summary>
public enum WeightLayerKind
{
    /// <summary>1x1 convolution with group 1: always prunable.</summary>
    Pointwise,
    /// <summary>Non-1x1 convolution with group 1, such as the first 3x3 conv: see <see cref="PruningOptions.IncludeFirstConvolution"/>.</summary>
    FullConvolution,
    /// <summary>Convolution with one input channel per group: see <see cref="PruningOptions.IncludeDepthwise"/>.</summary>
    Depthwise,
    /// <summary>Grouped convolution that is not depthwise: never pruned.</summary>
    GroupedConvolution,
    /// <summary>Gemm or MatMul with a constant weight: always prunable.</summary>
    FullyConnected,
    /// <summary>The last Conv, Gemm or MatMul of the graph: see <see cref="PruningOptions.IncludeClassifier"/>.</summary>
    Classifier,
}

/// <summary>What <see cref="OnnxPruner"/> did to one weight layer.</summary>
public sealed class LayerPruningReport
{
    internal LayerPruningReport(string name, string opType, string weightName, WeightLayerKind kind, IReadOnlyList<long> shape,
        long nonzerosBefore, long nonzerosAfter, bool pruned, string note)
    {
        Name = name;
        OpType = opType;
        WeightName = weightName;
        Kind = kind;
        Shape = shape;
        Elements = shape.Count == 0 ? 0 : shape.Aggregate(1L, (product, dim) => product * dim);
        NonzerosBefore = nonzerosBefore;
        NonzerosAfter = nonzerosAfter;
        Pruned = pruned;
        Note = note;
    }

    /// <summary>The node's name (or its first output's, when it has none).</summary>
    public string Name { get; }

    /// <summary>Conv, Gemm or MatMul.</summary>
    public string OpType { get; }

    /// <summary>The initializer holding the weight ("weight_orig * weight_mask" for a torch pruning product; empty when untraced).</summary>
    public string WeightName { get; }

    /// <summary>The layer's role.</summary>
    public WeightLayerKind Kind { get; }

    /// <summary>The weight's shape as stored (empty when the weight could not be traced to an initializer).</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Weights in the tensor.</summary>
    public long Elements { get; }

    /// <summary>Nonzero weights in the input model.</summary>
    public long NonzerosBefore { get; }

    /// <summary>Nonzero weights kept in the output model.</summary>
    public long NonzerosAfter { get; }

    /// <summary>Fraction of zero weights in the input model.</summary>
    public double SparsityBefore => Elements == 0 ? 0 : 1.0 - (double)NonzerosBefore / Elements;

    /// <summary>Fraction of zero weights in the output model.</summary>
    public double SparsityAfter => Elements == 0 ? 0 : 1.0 - (double)NonzerosAfter / Elements;

    /// <summary>Whether the layer took part in pruning (false: left as it was, see <see cref="Note"/>).</summary>
    public bool Pruned { get; }

    /// <summary>Why a layer was left dense, or how its weight was found (empty when there is nothing to say).</summary>
    public string Note { get; }
}

/// <summary>Per-layer outcome of <see cref="OnnxPruner"/>, with a printable table (<see cref="ToString"/>).</summary>
public sealed class PruningReport
{
    internal PruningReport(PruningOptions options, IReadOnlyList<LayerPruningReport> layers)
    {
        TargetSparsity = options.TargetSparsity;
        Scope = options.Scope;
        BlockSize = options.BlockSize;
        BlockNorm = options.BlockNorm;
        Layers = layers;
    }

    /// <summary>The requested sparsity.</summary>
    public float TargetSparsity { get; }

    /// <summary>Per-layer or global threshold.</summary>
    public PruningScope Scope { get; }

    /// <summary>Output channels pruned together.</summary>
    public int BlockSize { get; }

    /// <summary>Score of a block.</summary>
    public BlockNorm BlockNorm { get; }

    /// <summary>Every Conv, Gemm and MatMul weight of the graph in node order, pruned or not.</summary>
    public IReadOnlyList<LayerPruningReport> Layers { get; }

    /// <summary>Sparsity over the weights of the pruned layers together (the quantity the global scope targets).</summary>
    public double PrunedLayersSparsity => Sparsity(Layers.Where(layer => layer.Pruned));

    /// <summary>Sparsity over all weight layers of the graph before pruning.</summary>
    public double OverallSparsityBefore => 1.0 - (double)Layers.Sum(layer => layer.NonzerosBefore) / Math.Max(1, Layers.Sum(layer => layer.Elements));

    /// <summary>Sparsity over all weight layers of the graph after pruning.</summary>
    public double OverallSparsityAfter => Sparsity(Layers);

    private static double Sparsity(IEnumerable<LayerPruningReport> layers)
    {
        long elements = 0, nonzeros = 0;
        foreach (var layer in layers)
        {
            elements += layer.Elements;
            nonzeros += layer.NonzerosAfter;
        }
        return elements == 0 ? 0 : 1.0 - (double)nonzeros / elements;
    }

    /// <summary>A table of the layers (name, op, kind, shape, sparsity before/after, kept nonzeros) and a summary line.</summary>
    public override string ToString()
    {
        string[] header = ["layer", "op", "kind", "shape", "before", "after", "nonzeros", "note"];
        var rows = Layers.Select(layer => new[]
        {
            DisplayName(layer.Name), layer.OpType, layer.Kind.ToString(), string.Join("x", layer.Shape),
            Percent(layer.SparsityBefore), Percent(layer.SparsityAfter),
            $"{layer.NonzerosAfter.ToString("N0", CultureInfo.InvariantCulture)}/{layer.Elements.ToString("N0", CultureInfo.InvariantCulture)}",
            layer.Note,
        }).ToList();
        int[] widths = header.Select((title, column) => rows.Select(row => row[column].Length).Append(title.Length).Max()).ToArray();
        bool[] rightAligned = [false, false, false, false, true, true, true, false];

        var text = new StringBuilder();
        void AppendRow(string[] cells)
        {
            for (int column = 0; column < cells.Length; column++)
            {
                if (column > 0) text.Append("  ");
                text.Append(rightAligned[column] ? cells[column].PadLeft(widths[column]) : cells[column].PadRight(widths[column]));
            }
            text.Append('\n');
        }
        AppendRow(header);
        AppendRow(widths.Select(width => new string('-', width)).ToArray());
        rows.ForEach(AppendRow);

        int prunedCount = Layers.Count(layer => layer.Pruned);
        string blocks = BlockSize == 1 ? "single weights" : $"blocks of {BlockSize} output channels ({BlockNorm})";
        text.Append(CultureInfo.InvariantCulture,
            $"Pruned {prunedCount} of {Layers.Count} weight layers, target {Percent(TargetSparsity)} ({(Scope == PruningScope.Global ? "global" : "per layer")}, {blocks}): ");
        text.Append(CultureInfo.InvariantCulture,
            $"pruned layers {Percent(PrunedLayersSparsity)} sparse; all weights {Percent(OverallSparsityBefore)} -> {Percent(OverallSparsityAfter)} sparse.");
        return text.ToString();
    }

    /// <summary>Converter-made names can run to hundreds of characters ("a;b;c" fused names): the table shows the first
    /// part, shortened from the left so the most specific end stays visible.</summary>
    private static string DisplayName(string name)
    {
        const int MaxLength = 64;
        string first = name.Split(';')[0];
        return first.Length <= MaxLength ? first : "..." + first[^(MaxLength - 3)..];
    }

    private static string Percent(double fraction) => (fraction * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%";
}
