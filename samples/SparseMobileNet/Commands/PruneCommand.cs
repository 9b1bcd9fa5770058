using System.CommandLine;
using Microsoft.ML.Sparse;

namespace SparseMobileNet.Commands;

/// <summary>
/// <c>mlsparse prune &lt;input.onnx&gt; &lt;output.onnx&gt; --sparsity 0.9 [--global] [--block 4] [--l1] [--include-first]
/// [--include-depthwise] [--keep-classifier] [--calibration DIR [--calibration-images N] [--offset O] [--scale S] [--bgr]]</c>:
/// one-shot magnitude pruning, or with <c>--calibration</c> layer-wise reconstruction from those images; prints the per-layer report. Each
/// <see cref="PruningOptions"/> setting is one option here, bound in <see cref="Bind"/>.
/// </summary>
internal sealed class PruneCommand
{
    private readonly Argument<FileInfo> _input = CommonOptions.ExistingModel("input", "The dense ONNX model");
    private readonly Argument<FileInfo> _output = new("output") { Description = "Where to write the pruned model (may be the input)" };
    private readonly Option<float> _sparsity = CommonOptions.Sparsity(required: true);
    private readonly Option<bool> _global = new("--global") { Description = "One magnitude threshold over all pruned layers instead of the same sparsity in each" };
    private readonly Option<int> _block = new("--block") { Description = "Prune blocks of this many output channels together: 1, 2, 4 or 8", DefaultValueFactory = _ => 1 };
    private readonly Option<bool> _l1 = new("--l1") { Description = "Rank blocks by L1 norm instead of L2" };
    private readonly Option<bool> _includeFirst = new("--include-first") { Description = "Also prune full (non-1x1) convolutions such as the first layer" };
    private readonly Option<bool> _includeDepthwise = new("--include-depthwise") { Description = "Also prune depthwise convolutions" };
    private readonly Option<bool> _keepClassifier = new("--keep-classifier") { Description = "Leave the classifier (Gemm/MatMul) dense" };

    private readonly Option<DirectoryInfo?> _calibration = new("--calibration")
    {
        Description = "A folder of unlabelled images like the model's inputs: prune by layer-wise reconstruction (OBS) from them instead of by magnitude",
    };
    private readonly Option<int> _calibrationImages = new("--calibration-images") { Description = "Images of the folder used at most", DefaultValueFactory = _ => 16 };
    private readonly Option<float[]> _offset = new("--offset")
    {
        Description = "Subtracted from each 0-255 channel value of a calibration image: one value, or R G B", DefaultValueFactory = _ => [127.5f], AllowMultipleArgumentsPerToken = true,
    };
    private readonly Option<float[]> _scale = new("--scale")
    {
        Description = "Multiplies each channel value after the offset: one value, or R G B", DefaultValueFactory = _ => [1f / 127.5f], AllowMultipleArgumentsPerToken = true,
    };
    private readonly Option<bool> _bgr = new("--bgr") { Description = "Calibration images in B, G, R channel order (Caffe-style models)" };

    private PruneCommand()
    {
        _block.AcceptOnlyFromAmong("1", "2", "4", "8");
    }

    public static Command Create(CommandContext context)
    {
        var prune = new PruneCommand();
        var command = new Command("prune",
            "Prune an ONNX model: by weight magnitude (no data; expect an accuracy loss), or with --calibration by layer-wise " +
            "reconstruction from a few images, which keeps far more of the model's answers (see docs/pruning.md)")
        {
            prune._input, prune._output, prune._sparsity, prune._global, prune._block, prune._l1,
            prune._includeFirst, prune._includeDepthwise, prune._keepClassifier,
            prune._calibration, prune._calibrationImages, prune._offset, prune._scale, prune._bgr,
        };
        MLSparseCli.SetHandler(command, context, parsed => prune.Run(parsed, context));
        return command;
    }

    /// <summary>The pruning settings the command line asks for.</summary>
    internal PruningOptions Bind(ParseResult parsed) => new()
    {
        Method = parsed.GetValue(_calibration) is null ? PruningMethod.Magnitude : PruningMethod.Reconstruction,
        Calibration = parsed.GetValue(_calibration) is { } folder
            ? new CalibrationOptions
            {
                ImageFolder = folder.FullName, MaxImages = parsed.GetValue(_calibrationImages),
                Offsets = parsed.GetValue(_offset)!, Scales = parsed.GetValue(_scale)!, Bgr = parsed.GetValue(_bgr),
            }
            : null,
        TargetSparsity = parsed.GetValue(_sparsity),
        Scope = parsed.GetValue(_global) ? PruningScope.Global : PruningScope.PerLayer,
        BlockSize = parsed.GetValue(_block),
        BlockNorm = parsed.GetValue(_l1) ? BlockNorm.L1 : BlockNorm.L2,
        IncludeFirstConvolution = parsed.GetValue(_includeFirst),
        IncludeDepthwise = parsed.GetValue(_includeDepthwise),
        IncludeClassifier = !parsed.GetValue(_keepClassifier),
    };

    private int Run(ParseResult parsed, CommandContext context)
    {
        string input = parsed.GetRequiredValue(_input).FullName, output = parsed.GetRequiredValue(_output).FullName;
        var options = Bind(parsed);
        PruningReport report;
        using (var progress = context.Progress(parsed, $"Pruning {Path.GetFileName(input)}"))
        {
            options.Progress = new Progress<PruningProgress>(step => progress.Advance($"{step.Step} {step.Layer + 1}/{step.Layers} {step.LayerName}"));
            report = OnnxPruner.Prune(input, output, options);
        }
        context.Output.WriteLine(report);
        context.Output.WriteLine($"Wrote {output}");
        return MLSparseCli.Success;
    }
}
