using Microsoft.ML.Sparse;

namespace Microsoft.ML.Sparse.Fuzz;

/// <summary>
/// One fuzzing case: load the bytes as a model and, when it loads, score one image. The loader's contract is that a
/// bad file throws <see cref="OnnxModelException"/> naming its source; any other exception escapes and AFL records a
/// crash, and a case over AFL's time limit is a hang.
/// </summary>
internal static class LoaderTarget
{
    /// <summary>Inputs larger than this are cut (AFL's own limit is 1 MiB; the seeds are a few KiB).</summary>
    private const int MaxInputBytes = 1 << 20;

    /// <summary>A mutated input size may plan a huge image: such models are loaded but not scored.</summary>
    private const long MaxTensorFloats = 4 << 20;

    private static readonly byte[] s_buffer = new byte[MaxInputBytes];

    public static string Run(Stream input)
    {
        int length = 0;
        for (int read; length < s_buffer.Length && (read = input.Read(s_buffer, length, s_buffer.Length - length)) > 0;) length += read;

        SparseModel model;
        try
        {
            model = SparseModel.Load(s_buffer.AsMemory(0, length), new SparseModelOptions { Threads = 1 });
        }
        catch (OnnxModelException e) when (e.ModelSource == "(bytes)" && e.Message.StartsWith("ONNX model '(bytes)': ", StringComparison.Ordinal))
        {
            return e.GetType().Name;
        }

        // The largest tensor any layer reads or writes (public plan data) bounds the workspace to a few times that.
        long largest = model.Network.Layers.Select(l => Math.Max((long)l.Input.Length, l.Output.Length)).DefaultIfEmpty(model.InputLength).Max();
        if (largest > MaxTensorFloats) return "loaded, too large to score";
        var image = new float[model.InputLength];
        for (int i = 0; i < image.Length; i++) image[i] = MathF.Sin(i);
        var scores = new float[model.OutputLength];
        using var workspace = model.CreateWorkspace();
        model.Run(image, scores, workspace);
        ((object)model as IDisposable)?.Dispose();  // SparseModel is becoming IDisposable (native workspaces).
        return "loaded and scored";
    }
}
