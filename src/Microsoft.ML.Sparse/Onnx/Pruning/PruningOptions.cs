namespace Microsoft.ML.Sparse;

/// <summary>Where the magnitude threshold of <see cref="OnnxPruner"/> is chosen.</summary>
public enum PruningScope
{
    /// <summary>Every prunable layer is pruned to the target sparsity on its own (one threshold per layer).</summary>
    PerLayer,
    /// <summary>One magnitude threshold over all prunable weights together: the target holds for their total, and
    /// layers with small weights lose more than layers with large ones.</summary>
    Global,
    /// <summary>
    /// The target holds for the total, split by layer shape as in the Erdős-Rényi-Kernel rule (Evci et al., "Rigging
    /// the Lottery", 2020): a layer keeps a fraction of its weights proportional to (sum of its dimensions) / (their
    /// product), so small layers (a MobileNet's first 1x1 layers: few weights, every one of them on the critical path)
    /// stay denser and the large late layers and the classifier, which hold most weights, are pruned harder; a layer
    /// the rule would keep whole stays dense. Data-free, independent of weight magnitudes.
    /// </summary>
    ErdosRenyi,
}

/// <summary>How a block of output channels is scored.</summary>
public enum BlockNorm
{
    /// <summary>Root mean square of the block (the L2 norm, scaled so partial trailing blocks compare fairly).</summary>
    L2,
    /// <summary>Mean absolute value of the block (the L1 norm, scaled likewise).</summary>
    L1,
}

/// <summary>How <see cref="OnnxPruner"/> chooses the weights to remove.</summary>
public enum PruningMethod
{
    /// <summary>Zero the smallest weights (or blocks); the others keep their values. Needs no data; costs accuracy
    /// quickly (see docs/pruning.md).</summary>
    Magnitude,

    /// <summary>
    /// Layer-wise reconstruction from calibration images (Optimal Brain Surgeon in the column-by-column form of
    /// SparseGPT): the model's own engine runs the images to collect each 1x1 / fully connected layer's inputs X; the
    /// layer's weights are pruned to minimise ||W X - W' X||^2, updating the kept weights to compensate, with a bias
    /// correction for the remaining mean shift; layers are pruned in network order, each fed by the already-pruned
    /// layers before it. Needs <see cref="PruningOptions.Calibration"/>; no labels or gradients.
    /// </summary>
    Reconstruction,
}

/// <summary>Options of <see cref="OnnxPruner"/>: one-shot pruning of a dense ONNX model.</summary>
public sealed class PruningOptions
{
    /// <summary>Magnitude (default) or calibrated <see cref="PruningMethod.Reconstruction"/>.</summary>
    public PruningMethod Method { get; set; } = PruningMethod.Magnitude;

    /// <summary>The calibration images and preprocessing for <see cref="PruningMethod.Reconstruction"/>; ignored by magnitude pruning.</summary>
    public CalibrationOptions? Calibration { get; set; }

    /// <summary>Receives one report per pruned layer (and per calibration pass); null for none. Called on the pruning thread.</summary>
    public IProgress<PruningProgress>? Progress { get; set; }

    /// <summary>Fraction of each prunable layer's weights (or of all of them, for <see cref="PruningScope.Global"/>)
    /// that is zero afterwards, counting zeros already there; 0 to 1. Default 0.9.</summary>
    public float TargetSparsity { get; set; } = 0.9f;

    /// <summary>Per-layer or global threshold. Default per layer.</summary>
    public PruningScope Scope { get; set; } = PruningScope.PerLayer;

    /// <summary>Output channels pruned together: 1 (single weights), 2, 4 or 8. A block is B consecutive output channels
    /// at one input channel (and kernel tap), so the engine's block kernels apply. Depthwise layers always use 1.</summary>
    public int BlockSize { get; set; } = 1;

    /// <summary>Score of a block of more than one weight. Default L2.</summary>
    public BlockNorm BlockNorm { get; set; } = BlockNorm.L2;

    /// <summary>Also prunes full (non-1x1, group 1) convolutions such as the first 3x3 conv. Default false: the stem
    /// holds few weights and is sensitive.</summary>
    public bool IncludeFirstConvolution { get; set; }

    /// <summary>Also prunes depthwise convolutions. Default false: they hold few weights and the engine runs them dense.</summary>
    public bool IncludeDepthwise { get; set; }

    /// <summary>Prunes the classifier (the last Conv, Gemm or MatMul of the graph). Default true.</summary>
    public bool IncludeClassifier { get; set; } = true;

    internal void Validate()
    {
        if (!(TargetSparsity is >= 0f and <= 1f))
            throw new ArgumentOutOfRangeException(nameof(TargetSparsity), TargetSparsity, "TargetSparsity must be between 0 and 1.");
        if (BlockSize is not (1 or 2 or 4 or 8))
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "BlockSize must be 1, 2, 4 or 8 output channels.");
        if (!Enum.IsDefined(Scope)) throw new ArgumentOutOfRangeException(nameof(Scope), Scope, "Scope must be PerLayer, Global or ErdosRenyi.");
        if (!Enum.IsDefined(BlockNorm)) throw new ArgumentOutOfRangeException(nameof(BlockNorm), BlockNorm, "BlockNorm must be L2 or L1.");
        if (!Enum.IsDefined(Method)) throw new ArgumentOutOfRangeException(nameof(Method), Method, "Method must be Magnitude or Reconstruction.");
        if (Method == PruningMethod.Reconstruction)
        {
            if (Calibration is null)
                throw new ArgumentException("PruningMethod.Reconstruction needs PruningOptions.Calibration (an image folder, image paths or input tensors).", nameof(Calibration));
            Calibration.Validate();
        }
    }
}
