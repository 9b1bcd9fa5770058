// Uses the package as an app would: a pipeline with ScoreSparseMobileNet, a PredictionEngine, Save and Load in a
// fresh context, the same scores from SparseModel directly, Dispose, and an error naming a missing file.
// Arguments: the ML.NET version the app was restored with, and a folder to work in (the model is left there).
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Sparse;

string expectedMLNet = args[0];
string folder = Directory.CreateDirectory(args[1]).FullName;
int passed = 0, failed = 0;
void Check(bool condition, string what)
{
    Console.WriteLine($"  {(condition ? "ok  " : "FAIL")} {what}");
    if (condition) passed++; else failed++;
}

string mlnet = typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
Check(mlnet.StartsWith(expectedMLNet + "+", StringComparison.Ordinal), $"runs on ML.NET {mlnet.Split('+')[0]} (expected {expectedMLNet})");

// A small MobileNet v1 with 80% zeros in its 1x1 weights, written where the tool test can find it.
string modelFile = Path.Combine(folder, "mobilenet.onnx");
File.WriteAllBytes(modelFile, SyntheticMobileNet.Create(new SyntheticMobileNetOptions
{
    WidthMultiplier = 0.25f, Resolution = 32, Classes = 10, PointwiseSparsity = 0.8f, Seed = 7,
}));

var random = new Random(1);
var rows = Enumerable.Range(0, 4).Select(_ => new Row { Pixels = Enumerable.Range(0, 3 * 32 * 32).Select(_ => random.NextSingle() * 2 - 1).ToArray() }).ToArray();
var mlContext = new MLContext(seed: 1);
var data = mlContext.Data.LoadFromEnumerable(rows);
var pipeline = mlContext.Transforms.CopyColumns("input", nameof(Row.Pixels))
    .Append(mlContext.Transforms.ScoreSparseMobileNet("output", "input", modelFile));
using var model = pipeline.Fit(data);
float[][] scored = mlContext.Data.CreateEnumerable<Scores>(model.Transform(data), reuseRowObject: false).Select(s => s.Output).ToArray();
Check(scored.Length == 4 && scored.All(s => s.Length == 10), "the pipeline scores 4 rows of 10 classes");

float[][] direct;
using (var sparse = SparseModel.Load(modelFile, new SparseModelOptions { Threads = 1 }))
using (var workspace = sparse.CreateWorkspace())
{
    direct = rows.Select(r =>
    {
        var output = new float[sparse.OutputLength];
        sparse.Run(r.Pixels, output, workspace);
        return output;
    }).ToArray();
}
Check(scored.Zip(direct).All(p => p.First.SequenceEqual(p.Second)), "its scores equal SparseModel.Run's, bit for bit");

using (var engine = mlContext.Model.CreatePredictionEngine<Row, Scores>(model))
    Check(engine.Predict(rows[2]).Output.SequenceEqual(direct[2]), "a PredictionEngine gives the same scores");

string zip = Path.Combine(folder, "model.zip");
mlContext.Model.Save(model, data.Schema, zip);
File.Move(modelFile, modelFile + ".moved"); // the saved model must not need the ONNX file
var loadContext = new MLContext(seed: 2);
var loaded = loadContext.Model.Load(zip, out _);
float[][] reloaded = loadContext.Data.CreateEnumerable<Scores>(loaded.Transform(loadContext.Data.LoadFromEnumerable(rows)), reuseRowObject: false).Select(s => s.Output).ToArray();
Check(reloaded.Zip(direct).All(p => p.First.SequenceEqual(p.Second)), "Save, then Load in a fresh context without the ONNX file, gives the same scores");
File.Move(modelFile + ".moved", modelFile);

var scorer = ((TransformerChain<ITransformer>)loaded).OfType<SparseMobileNetTransformer>().Single();
((IDisposable)loaded).Dispose();
Check(scorer.IsDisposed, "disposing the loaded chain disposes the scorer");

string missing = Path.Combine(folder, "missing.onnx");
try
{
    mlContext.Transforms.ScoreSparseMobileNet(missing);
    Check(false, "a missing model file is refused");
}
catch (FileNotFoundException e)
{
    Check(e.Message.Contains(missing, StringComparison.Ordinal), "a missing model file is refused, naming it");
}

Console.WriteLine($"package consumer on ML.NET {expectedMLNet}: {passed} passed, {failed} failed");
return failed == 0 ? 0 : 1;

internal sealed class Row
{
    [VectorType(3, 32, 32)]
    public float[] Pixels { get; set; } = [];
}

internal sealed class Scores
{
    [ColumnName("output")]
    [VectorType(10)]
    public float[] Output { get; set; } = [];
}
