using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.Sparse.Tests;

/// <summary>Runs an ONNX model with ONNX Runtime on one thread: the reference the importer's scores are compared with.</summary>
internal sealed class OnnxRuntimeReference : IDisposable
{
    private readonly InferenceSession _session;

    public OnnxRuntimeReference(string modelPath) => _session = new InferenceSession(modelPath, CreateOptions());

    public OnnxRuntimeReference(byte[] model) => _session = new InferenceSession(model, CreateOptions());

    public string InputName => _session.InputMetadata.Keys.First();

    /// <summary>Runs the model on <paramref name="input"/> of the given dims (batch included) and returns its first output.</summary>
    public float[] Run(float[] input, params int[] dims)
    {
        var tensor = new DenseTensor<float>(input, dims);
        using var results = _session.Run([NamedOnnxValue.CreateFromTensor(InputName, tensor)]);
        return results.First().AsEnumerable<float>().ToArray();
    }

    public void Dispose() => _session.Dispose();

    private static SessionOptions CreateOptions() => new()
    {
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };
}
