using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Sparse;

/// <summary>
/// The lazily scored view <see cref="SparseMobileNetTransformer.Transform"/> returns: the source's columns plus the
/// output column. Like ML.NET's own row-to-row transforms (TransformBase, RowToRowMapperTransform), a cursor that
/// needs the output scores rows on parallel cursors and consolidates them back, in order, into one cursor; here only
/// when each row's engine is single-threaded (<see cref="SparseMobileNetTransformer.ThreadsPerRow"/> = 1), so that
/// rows and threads within a row never compete for the cores.
/// </summary>
internal sealed class SparseMobileNetDataView : IDataView
{
    private readonly SparseMobileNetTransformer _parent;
    private readonly IDataView _source;
    private readonly IHost _host;

    public SparseMobileNetDataView(SparseMobileNetTransformer parent, IDataView source, DataViewSchema schema, IHost host)
    {
        _parent = parent;
        _source = source;
        _host = host;
        Schema = schema;
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => _source.CanShuffle;

    public long? GetRowCount() => _source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        ArgumentNullException.ThrowIfNull(columnsNeeded);
        var columns = columnsNeeded.ToArray();
        bool outputActive = SourceColumnsNeeded(columns, out var sourceColumns);
        // ML.NET's consolidator asks GetRowCursorSet below for max(2, cores - 1) cursors and merges them in row order;
        // it declines (false) when a needed column cannot be buffered (e.g. an image).
        if (outputActive && _parent.ThreadsPerRow == 1 && DataViewUtils.TryCreateConsolidatingCursor(out var consolidated, this, columns, _host, rand))
            return consolidated;
        return new Cursor(this, _source.GetRowCursor(sourceColumns, rand), outputActive);
    }

    /// <summary>
    /// One cursor per source cursor, each with its own workspace. A source that gives a single cursor is split into
    /// <paramref name="n"/> (ML.NET's splitter hands each a share of the rows) when the output column is needed.
    /// </summary>
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
    {
        bool outputActive = SourceColumnsNeeded(columnsNeeded, out var sourceColumns);
        var inputs = _source.GetRowCursorSet(sourceColumns, n, rand);
        if (inputs.Length == 1 && n > 1 && outputActive && (_source.GetRowCount() ?? long.MaxValue) > n)
            inputs = DataViewUtils.CreateSplitCursors(_host, inputs[0], n);
        return inputs.Select(c => (DataViewRowCursor)new Cursor(this, c, outputActive)).ToArray();
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
