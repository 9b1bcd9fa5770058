using System.CommandLine;
using System.CommandLine.Parsing;

namespace SparseMobileNet;

/// <summary>Arguments and options several commands share, with their validation.</summary>
internal static class CommonOptions
{
    /// <summary>An ONNX model that must exist (the parser says so, naming the file, before the command runs).</summary>
    public static Argument<FileInfo> ExistingModel(string name, string description) =>
        new Argument<FileInfo>(name) { Description = description }.AcceptExistingOnly();

    /// <summary>Engine threads per inference, at least 1.</summary>
    public static Option<int> Threads(int defaultValue, string description)
    {
        var option = new Option<int>("--threads") { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result => AtLeast(result, 1));
        return option;
    }

    /// <summary>A fraction of weights to prune, in [0, 1).</summary>
    public static Option<float> Sparsity(bool required, float defaultValue = 0.9f)
    {
        var option = new Option<float>("--sparsity")
        {
            Description = "Fraction of the pruned layers' weights set to zero, in [0, 1)",
            Required = required,
        };
        if (!required) option.DefaultValueFactory = _ => defaultValue;
        option.Validators.Add(result =>
        {
            if (TryGetValue(result, out float value) && !(value >= 0f && value < 1f))
                result.AddError($"--sparsity takes a fraction in [0, 1), got {value}.");
        });
        return option;
    }

    public static void AtLeast(OptionResult result, int minimum)
    {
        if (TryGetValue(result, out int value) && value < minimum) result.AddError($"{result.Option.Name} must be at least {minimum}, got {value}.");
    }

    /// <summary>The option's value; false when it did not parse (the parser reports that error itself).</summary>
    private static bool TryGetValue<T>(OptionResult result, out T value)
    {
        try
        {
            value = result.GetValueOrDefault<T>();
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default!;
            return false;
        }
    }
}
