using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse;

/// <summary>The lazily scored view <see cref="SparseMobileNetTransformer.Transform"/> returns: the source's columns plus the output column.</summary>
internal sealed class SparseMobileNetDataView : IDataView
{
    private readonly SparseMobileNetTransformer _parent;
    private readonly IDataView _source;

    public SparseMobileNetDataView(SparseMobileNetTransformer parent, IDataView source, DataViewSchema schema)
    {
        _parent = parent;
        _source = source;
        Schema = schema;
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => _source.CanShuffle;

    public long? GetRowCount() => _source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        bool outputActive = SourceColumnsNeeded(columnsNeeded, out var sourceColumns);
        return new Cursor(this, _source.GetRowCursor(sourceColumns, rand), outputActive);
    }

    /// <summary>One cursor per source cursor, each with its own workspace: consumers score rows in parallel this way.</summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
    {
        bool outputActive = SourceColumnsNeeded(columnsNeeded, out var sourceColumns);
        return _source.GetRowCursorSet(sourceColumns, n, rand).Select(c => (DataViewRowCursor)new Cursor(this, c, outputActive)).ToArray();
    }

    /// <summary>The source columns a cursor must activate; true when the output column is needed (it needs the input column).</summary>
    private bool SourceColumnsNeeded(IEnumerable<DataViewSchema.Column> columnsNeeded, out List<DataViewSchema.Column> sourceColumns)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        int outputIndex = _source.Schema.Count;
        bool outputActive = false;
        sourceColumns = [];
        foreach (var column in columnsNeeded)
        {
            if (column.Index == outputIndex) outputActive = true;
            else sourceColumns.Add(_source.Schema[column.Index]);
        }
        if (outputActive) sourceColumns.Add(_source.Schema[_parent.InputColumnName]);
        return outputActive;
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _source;
        private readonly ScoredRowBinding _binding;
        private bool _disposed;

        public Cursor(SparseMobileNetDataView view, DataViewRowCursor source, bool outputActive)
        {
            _source = source;
            Schema = view.Schema;
            _binding = new ScoredRowBinding(view._parent, source, outputActive);
        }

        public override DataViewSchema Schema { get; }

        public override long Position => _source.Position;

        public override long Batch => _source.Batch;

        public override bool MoveNext() => _source.MoveNext();

        public override ValueGetter<DataViewRowId> GetIdGetter() => _source.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _binding.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _binding.GetGetter<TValue>(column);

        protected override void Dispose(bool disposing)
        {
            if (_disposed) return;
            _disposed = true;
            if (disposing)
            {
                _binding.Dispose();
                _source.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
