using System.CommandLine;
using Microsoft.ML.Sparse;

namespace SparseMobileNet.Commands;

/// <summary><c>mlsparse inspect &lt;model.onnx&gt; [--threads N]</c>: imports the model into the sparse engine and prints its layer plan.</summary>
internal sealed class InspectCommand
{
    private readonly Argument<FileInfo> _model = CommonOptions.ExistingModel("model", "The ONNX model");
    private readonly Option<int> _threads = CommonOptions.Threads(Environment.ProcessorCount, "Threads the plan is made for (it splits layers by thread)");

    public static Command Create(CommandContext context)
    {
        var inspect = new InspectCommand();
        var command = new Command("inspect", "Print the engine's plan for a model: per layer shape, sparsity, kernel and dense vs executed multiply-adds")
        {
            inspect._model, inspect._threads,
        };
        MLSparseCli.SetHandler(command, context, parsed => inspect.Run(parsed, context));
        return command;
    }

    private int Run(ParseResult parsed, CommandContext context)
    {
        using var model = SparseModel.Load(parsed.GetRequiredValue(_model).FullName, new SparseModelOptions { Threads = parsed.GetValue(_threads) });
        context.Output.Write(model.Describe());
        return MLSparseCli.Success;
    }
}
