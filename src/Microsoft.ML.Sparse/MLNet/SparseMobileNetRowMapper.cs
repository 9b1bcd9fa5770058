using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse;

/// <summary>Scores single rows for <see cref="PredictionEngine{TSrc, TDst}"/>; each row it makes owns its own workspace.</summary>
internal sealed class SparseMobileNetRowMapper : IRowToRowMapper
{
    private readonly SparseMobileNetTransformer _parent;

    public SparseMobileNetRowMapper(SparseMobileNetTransformer parent, DataViewSchema inputSchema, DataViewSchema outputSchema)
    {
        _parent = parent;
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    private int OutputIndex => InputSchema.Count;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        ArgumentNullException.ThrowIfNull(dependingColumns);
        var needed = new HashSet<int>();
        foreach (var column in dependingColumns)
            needed.Add(column.Index == OutputIndex ? InputSchema[_parent.InputColumnName].Index : column.Index);
        return needed.Order().Select(index => InputSchema[index]).ToArray();
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(activeColumns);
        if (input.Schema.Count != InputSchema.Count)
            throw new ArgumentException($"The row has {input.Schema.Count} columns; this mapper was made for a schema of {InputSchema.Count}.", nameof(input));
        _parent.CheckInputColumn(input.Schema);
        bool outputActive = activeColumns.Any(c => c.Index == OutputIndex);
        return new Row(input, OutputSchema, new ScoredRowBinding(_parent, input, outputActive));
    }

    private sealed class Row(DataViewRow input, DataViewSchema schema, ScoredRowBinding binding) : DataViewRow
    {
        private bool _disposed;

        public override DataViewSchema Schema => schema;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => binding.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => binding.GetGetter<TValue>(column);

        // The input row belongs to the caller; only the workspace is ours.
        protected override void Dispose(bool disposing)
        {
            if (_disposed) return;
            _disposed = true;
            if (disposing) binding.Dispose();
            base.Dispose(disposing);
        }
    }
}
