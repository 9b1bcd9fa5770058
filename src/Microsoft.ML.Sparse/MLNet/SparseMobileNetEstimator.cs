using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse;

/// <summary>
/// Estimator for <see cref="SparseMobileNetTransformer"/>; create it with
/// <see cref="SparseMobileNetCatalog.ScoreSparseMobileNet(TransformsCatalog, string, string, string)"/> or its overloads.
/// It has nothing to train: the model is imported when the estimator is created, and <see cref="Fit"/> only checks
/// the input schema.
/// </summary>
public sealed class SparseMobileNetEstimator : IEstimator<SparseMobileNetTransformer>
{
    private readonly Lock _gate = new();
    private SparseMobileNetTransformer _transformer;

    internal SparseMobileNetEstimator(SparseMobileNetTransformer transformer) => _transformer = transformer;

    /// <summary>
    /// Checks <paramref name="input"/>'s schema and returns the (shared, thread-safe) transformer; once that has been
    /// disposed, a new one importing the same model.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a float vector of the model's input size; the message names the column, the expected and the actual type.</exception>
    public SparseMobileNetTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        SparseMobileNetTransformer transformer;
        lock (_gate)
        {
            if (_transformer.IsDisposed) _transformer = _transformer.Reimport();
            transformer = _transformer;
        }
        transformer.CheckInputColumn(input.Schema);
        return transformer;
    }

    /// <summary>
    /// The input schema shape plus the output column. A <see cref="SchemaShape"/> carries no vector sizes, so this
    /// checks the input column's presence, kind and item type; <see cref="Fit"/> also checks its size.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a known-size float vector.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var transformer = Volatile.Read(ref _transformer);
        transformer.CheckInputColumn(inputSchema);
        var columns = inputSchema.Where(c => c.Name != transformer.OutputColumnName).ToList();
        columns.Add(transformer.OutputSchemaShapeColumn);
        return new SchemaShape(columns);
    }
}
