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
    private readonly SparseMobileNetTransformer _transformer;

    internal SparseMobileNetEstimator(SparseMobileNetTransformer transformer) => _transformer = transformer;

    /// <summary>Checks <paramref name="input"/>'s schema and returns the (shared, thread-safe) transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a float vector of the model's input size; the message names the column, the expected and the actual type.</exception>
    public SparseMobileNetTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _transformer.CheckInputColumn(input.Schema);
        return _transformer;
    }

    /// <summary>
    /// The input schema shape plus the output column. A <see cref="SchemaShape"/> carries no vector sizes, so this
    /// checks the input column's presence, kind and item type; <see cref="Fit"/> also checks its size.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The input column is missing or is not a known-size float vector.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        _transformer.CheckInputColumn(inputSchema);
        var columns = inputSchema.Where(c => c.Name != _transformer.OutputColumnName).ToList();
        columns.Add(_transformer.OutputSchemaShapeColumn);
        return new SchemaShape(columns);
    }
}
