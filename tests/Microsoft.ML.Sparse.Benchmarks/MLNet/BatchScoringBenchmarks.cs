using BenchmarkDotNet.Attributes;
using Microsoft.ML.Data;

namespace Microsoft.ML.Sparse.Benchmarks.MLNet;

/// <summary>
/// Reading the scores of an IDataView of 32 images through one cursor: rows in parallel (the default,
/// ThreadsPerRow = 1: the cursor consolidates max(2, cores - 1) split cursors, each with its own single-threaded
/// engine), all cores inside each row (ThreadsPerRow = cores, rows one after another), and the sequential
/// single-thread baseline (a cursor set of one).
/// </summary>
public class BatchScoringBenchmarks
{
    private const int Images = 32;

    private PrunedBenchmarkModel _model = null!;
    private IDataView _oneThreadPerRow = null!;
    private IDataView _allThreadsPerRow = null!;

    [GlobalSetup]
    public void Setup()
    {
        _model = new PrunedBenchmarkModel();
        var mlContext = new MLContext(seed: 1);
        var rows = _model.RandomImages(Images, seed: 2).Select(image => new PrunedBenchmarkModel.PixelInput { Pixels = image });
        var data = mlContext.Data.LoadFromEnumerable(rows.ToArray(), _model.InputSchema());
        IDataView Scored(int threadsPerRow) => mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions
        {
            ModelFile = _model.File,
            ThreadsPerRow = threadsPerRow,
        }).Fit(data).Transform(data);
        _oneThreadPerRow = Scored(1);
        _allThreadsPerRow = Scored(Environment.ProcessorCount);
    }

    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    [Benchmark(Baseline = true, Description = "sequential, 1 thread")]
    public float Sequential() => Drain(Assert1(_oneThreadPerRow.GetRowCursorSet([OutputColumn(_oneThreadPerRow)], 1)), OutputColumn(_oneThreadPerRow));

    [Benchmark(Description = "rows in parallel (ThreadsPerRow = 1)")]
    public float RowsInParallel() => Drain(_oneThreadPerRow.GetRowCursor([OutputColumn(_oneThreadPerRow)]), OutputColumn(_oneThreadPerRow));

    [Benchmark(Description = "threads within a row (ThreadsPerRow = cores)")]
    public float ThreadsWithinARow() => Drain(_allThreadsPerRow.GetRowCursor([OutputColumn(_allThreadsPerRow)]), OutputColumn(_allThreadsPerRow));

    private static DataViewRowCursor Assert1(DataViewRowCursor[] cursors) =>
        cursors.Length == 1 ? cursors[0] : throw new InvalidOperationException($"Expected one cursor, got {cursors.Length}.");

    private DataViewSchema.Column OutputColumn(IDataView view) => view.Schema[_model.Model.OutputName];

    /// <summary>Reads every row's output (so each row is scored) and disposes the cursor.</summary>
    private static float Drain(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        using (cursor)
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            var scores = default(VBuffer<float>);
            float checksum = 0;
            while (cursor.MoveNext())
            {
                getter(ref scores);
                checksum += scores.GetValues()[0];
            }
            return checksum;
        }
    }
}
