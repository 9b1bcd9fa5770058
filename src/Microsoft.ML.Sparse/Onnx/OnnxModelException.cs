namespace Microsoft.ML.Sparse;

/// <summary>
/// Base class of the errors <see cref="SparseModel.Load(string, SparseModelOptions?, CancellationToken)"/> reports about an ONNX model.
/// Catch this type to handle every model problem at once.
/// </summary>
public class OnnxModelException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="modelSource">The file path, or "(stream)"/"(bytes)" when the model was not loaded from a file.</param>
    /// <param name="message">What is wrong; the model source is prefixed.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public OnnxModelException(string modelSource, string message, Exception? innerException = null)
        : base($"ONNX model '{modelSource}': {message}", innerException)
    {
        ModelSource = modelSource;
    }

    /// <summary>The file path, or "(stream)"/"(bytes)" when the model was not loaded from a file.</summary>
    public string ModelSource { get; }
}

/// <summary>
/// The file is not a well-formed ONNX model: truncated or corrupt protobuf, not a model at all, tensors whose declared
/// size disagrees with their data, missing or unsafe external data, dangling value names.
/// </summary>
public sealed class InvalidOnnxModelException : OnnxModelException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="modelSource">The file path, or "(stream)"/"(bytes)".</param>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public InvalidOnnxModelException(string modelSource, string message, Exception? innerException = null)
        : base(modelSource, message, innerException)
    {
    }
}

/// <summary>
/// The model is valid ONNX but uses something the sparse engine cannot run: an operator outside the supported list,
/// an unsupported attribute value (dilations, groups, padding mode), an opset outside 7-21, or an input that is not a
/// single float NCHW/NHWC image. <see cref="NodeName"/> and <see cref="OpType"/> name the offending node when there is one.
/// </summary>
public sealed class UnsupportedOnnxModelException : OnnxModelException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="modelSource">The file path, or "(stream)"/"(bytes)".</param>
    /// <param name="nodeName">Name of the offending node, or null when the problem is not a node's.</param>
    /// <param name="opType">Operator type of the offending node, or null.</param>
    /// <param name="message">What is unsupported and what is supported instead.</param>
    public UnsupportedOnnxModelException(string modelSource, string? nodeName, string? opType, string message)
        : base(modelSource, nodeName is null ? message : $"node '{nodeName}' ({opType}): {message}")
    {
        NodeName = nodeName;
        OpType = opType;
    }

    /// <summary>Name of the offending node (its first output when the node is unnamed), or null.</summary>
    public string? NodeName { get; }

    /// <summary>Operator type of the offending node, or null.</summary>
    public string? OpType { get; }
}
