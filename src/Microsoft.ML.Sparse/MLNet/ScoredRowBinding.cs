using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse;

/// <summary>
/// The columns of one scored row: the input row's columns pass through, the column after them is the model output.
/// Shared by the data view's cursors and the row mapper's rows. Owns one <see cref="SparseWorkspace"/> (only when the
/// output column is active), so it is not thread-safe: one per cursor or mapped row.
/// </summary>
internal sealed class ScoredRowBinding : IDisposable
{
    private readonly SparseMobileNetTransformer _parent;
    private readonly DataViewRow _input;
    private readonly int _outputIndex;
    private readonly ValueGetter<VBuffer<float>>? _getInput;
    private readonly SparseWorkspace? _workspace;
    private readonly float[] _output;
    private readonly ValueGetter<VBuffer<float>> _getOutput;
    private VBuffer<float> _inputBuffer;
    private float[]? _denseInput;
    private long _scoredPosition = -1;

    public ScoredRowBinding(SparseMobileNetTransformer parent, DataViewRow input, bool outputActive)
    {
        _parent = parent;
        _input = input;
        _outputIndex = input.Schema.Count;
        _output = outputActive ? new float[parent.Model.OutputLength] : [];
        _getOutput = GetOutput;
        if (!outputActive) return;
        _getInput = input.GetGetter<VBuffer<float>>(input.Schema[parent.InputColumnName]);
        _workspace = parent.Model.CreateWorkspace();
    }

    public bool IsColumnActive(DataViewSchema.Column column) =>
        column.Index == _outputIndex ? _workspace is not null : _input.IsColumnActive(_input.Schema[column.Index]);

    public ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (column.Index != _outputIndex) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
        if (_workspace is null)
            throw new InvalidOperationException($"Column '{column.Name}' was not requested as active when the cursor or row was created.");
        if (_getOutput is not ValueGetter<TValue> getter)
            throw new InvalidOperationException($"Column '{column.Name}' holds {nameof(VBuffer<float>)}<Single>, not {typeof(TValue).Name}.");
        return getter;
    }

    public void Dispose() => _workspace?.Dispose();

    private void GetOutput(ref VBuffer<float> value)
    {
        ScoreCurrentRow();
        // Reuses the caller's array when it is large enough (VBufferEditor), so steady-state scoring allocates nothing.
        var editor = VBufferEditor.Create(ref value, _output.Length);
        _output.CopyTo(editor.Values);
        value = editor.Commit();
    }

    /// <summary>Runs the model once per row, however many times the output getter is called for it.</summary>
    private void ScoreCurrentRow()
    {
        long position = _input.Position;
        if (position == _scoredPosition) return;
        _getInput!(ref _inputBuffer);
        _parent.Model.Run(DenseInput(), _output, _workspace!);
        _scoredPosition = position;
    }

    private ReadOnlySpan<float> DenseInput()
    {
        int length = _parent.Model.InputLength;
        if (_inputBuffer.Length != length)
            throw new InvalidOperationException(
                $"Column '{_parent.InputColumnName}' holds a vector of {_inputBuffer.Length} values in row {_input.Position}; the model takes {length}.");
        if (_inputBuffer.IsDense) return _inputBuffer.GetValues();
        _denseInput ??= new float[length];
        _inputBuffer.CopyTo(_denseInput);
        return _denseInput;
    }
}
