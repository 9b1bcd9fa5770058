using System.IO.Compression;
using System.Reflection;
using Microsoft.ML.Data;
using static Microsoft.ML.Sparse.Tests.MLNet.MLNetTestData;

namespace Microsoft.ML.Sparse.Tests.MLNet;

/// <summary>mlContext.Model.Save/Load of pipelines holding the transformer, and the ML.NET internals it relies on.</summary>
public class SparseMobileNetSaveLoadTests
{
    /// <summary>
    /// The ML.NET releases the library supports: those whose internals used by persistence (build/Publicizer, see
    /// docs/mlnet.md) were checked to be the same. The package declares this range; .ci/package-test.sh runs both ends.
    /// </summary>
    private const string SupportedMLNetRange = "[5.0.1, 7.0.0)";
    private static readonly Version s_lowestSupportedMLNet = new(5, 0, 1), s_firstUnsupportedMLNet = new(7, 0, 0);

    [Fact]
    public void SavedPipelineLoadsInAFreshContextWithoutTheModelFileAndScoresBitExactly()
    {
        var mlContext = new MLContext(seed: 1);
        float[][] images = RandomImages(4, seed: 21);
        var data = LoadPixels(mlContext, images, columnName: "pixels");
        using var modelFile = TinyModelFile();
        using var zip = new TemporaryFile(".zip");
        // A three-step chain: the sparse scorer between two ML.NET transforms.
        var pipeline = mlContext.Transforms.CopyColumns("pixelsCopy", "pixels")
            .Append(mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions
            {
                ModelFile = modelFile.Path, InputColumnName = "pixelsCopy", OutputColumnName = "scores",
                ThreadsPerRow = 2, SparseThreshold = 0.5f, InputShape = [1, 3, Resolution, Resolution],
            }))
            .Append(mlContext.Transforms.CopyColumns("scoresCopy", "scores"));
        var model = pipeline.Fit(data);
        float[][] before = ReadVectors(model.Transform(data), "scoresCopy");
        mlContext.Model.Save(model, data.Schema, zip.Path);
        modelFile.Dispose(); // deletes the ONNX file: the loaded pipeline must not need it

        // A new context: its component catalog has never seen this assembly; the saved header names it.
        var loadContext = new MLContext(seed: 2);
        var loaded = loadContext.Model.Load(zip.Path, out var inputSchema);

        float[][] after = ReadVectors(loaded.Transform(LoadPixels(loadContext, images, columnName: "pixels")), "scoresCopy");
        Assert.Equal(before, after);
        Assert.Equal(ScoreDirectly(SparseModel.Load(TinyModel, cancellationToken: TestContext.Current.CancellationToken), images), after);
        Assert.Equal(data.Schema["pixels"].Type, inputSchema["pixels"].Type);
        var scorer = Assert.Single(((TransformerChain<ITransformer>)loaded).OfType<SparseMobileNetTransformer>());
        Assert.Equal(("pixelsCopy", "scores", 2, 0.5f), (scorer.InputColumnName, scorer.OutputColumnName, scorer.ThreadsPerRow, scorer.SparseThreshold));
        Assert.Equal([3, Resolution, Resolution], scorer.Model.InputShape);
    }

    [Fact]
    public void SavedModelEmbedsTheOnnxBytesUnderAVersionedHeader()
    {
        var mlContext = new MLContext(seed: 1);
        var data = LoadPixels(mlContext, RandomImages(1, seed: 22));
        var transformer = mlContext.Transforms.ScoreSparseMobileNet(new SparseMobileNetOptions { ModelBytes = TinyModel }).Fit(data);
        using var saved = new MemoryStream();
        mlContext.Model.Save(transformer, data.Schema, saved);

        using var zip = new ZipArchive(new MemoryStream(saved.ToArray()), ZipArchiveMode.Read);
        var entries = zip.Entries.Select(entry =>
        {
            using var content = new MemoryStream();
            using (var stream = entry.Open()) stream.CopyTo(content);
            return (entry.FullName, Bytes: content.ToArray());
        }).ToArray();
        // The transformer's stream is the one holding the ONNX bytes (ML.NET names the entries; the layout is its own).
        var holding = entries.Where(e => e.Bytes.AsSpan().IndexOf(TinyModel) >= 0).ToArray();
        Assert.True(holding.Length == 1, $"ONNX bytes in {holding.Length} of the entries {string.Join(", ", entries.Select(e => e.FullName))}");
        byte[] bytes = holding[0].Bytes;

        Assert.True(bytes.AsSpan().IndexOf("SPMBNTSC"u8) >= 0, "model signature");
        Assert.True(bytes.AsSpan().IndexOf("SparseMobileNetScorer"u8) >= 0, "loader signature");
        // ML.NET's header stores the loader assembly name in UTF-16; with it, loading needs no registration call.
        Assert.True(bytes.AsSpan().IndexOf(System.Text.Encoding.Unicode.GetBytes("Microsoft.ML.Sparse, Version=")) >= 0, "loader assembly name");

        // Loading from the stream round-trips too.
        var loaded = new MLContext().Model.Load(new MemoryStream(saved.ToArray()), out _);
        Assert.IsType<SparseMobileNetTransformer>(loaded);
    }

    [Fact]
    public void LoaderIsDeclaredToMLNetsComponentCatalog()
    {
        var attributes = typeof(SparseMobileNetTransformer).Assembly.GetCustomAttributes()
            .Where(a => a.GetType().FullName == "Microsoft.ML.LoadableClassAttribute").ToArray();

        var loader = Assert.Single(attributes);
        var instanceType = (Type)loader.GetType().GetProperty("InstanceType")!.GetValue(loader)!;
        var loaderType = (Type)loader.GetType().GetProperty("LoaderType")!.GetValue(loader)!;
        Assert.Equal(typeof(SparseMobileNetTransformer), instanceType);
        Assert.Equal(typeof(SparseMobileNetTransformer), loaderType);
    }

    [Fact]
    public void RuntimeMLNetIsInTheSupportedRangeThePackageDeclares()
    {
        // The library compiles against ML.NET internals (ModelSaveContext, ModelLoadContext, VersionInfo,
        // LoadableClass): a release outside the checked range may change them, so an upgrade must fail here first.
        foreach (var assembly in new[] { typeof(MLContext).Assembly, typeof(ModelSaveContext).Assembly })
        {
            string informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
            var version = Version.Parse(informational.Split('+', '-')[0]);
            Assert.True(version >= s_lowestSupportedMLNet && version < s_firstUnsupportedMLNet,
                $"{assembly.GetName().Name} {informational} is outside the supported range {SupportedMLNetRange}.");
        }
        string declared = typeof(SparseMobileNetTransformer).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "SupportedMLNetVersions").Value!;
        Assert.Equal(SupportedMLNetRange, declared);

        var referenced = typeof(SparseMobileNetTransformer).Assembly.GetReferencedAssemblies()
            .Where(a => a.Name is "Microsoft.ML.Core" or "Microsoft.ML.Data").ToArray();
        Assert.Equal(2, referenced.Length);
        Assert.All(referenced, reference => Assert.Equal(typeof(MLContext).Assembly.GetName().Version, reference.Version));
    }

    [Fact]
    public void PublicApiExposesNoNonPublicMLNetType()
    {
        // The library compiles against publicized ML.NET assemblies, so the compiler cannot catch an internal ML.NET
        // type in a public signature: check every public and protected signature against the real assemblies.
        var leaks = new List<string>();
        foreach (var type in typeof(SparseMobileNetTransformer).Assembly.GetExportedTypes())
        {
            Check(type.BaseType, $"{type} base type");
            foreach (var implemented in type.GetInterfaces()) Check(implemented, $"{type} interface");
            const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var member in type.GetMembers(Declared))
            {
                switch (member)
                {
                    case MethodBase method when method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly:
                        if (method is MethodInfo info) Check(info.ReturnType, $"{type}.{method.Name} return");
                        foreach (var parameter in method.GetParameters()) Check(parameter.ParameterType, $"{type}.{method.Name}({parameter.Name})");
                        break;
                    case FieldInfo field when field.IsPublic || field.IsFamily || field.IsFamilyOrAssembly:
                        Check(field.FieldType, $"{type}.{field.Name}");
                        break;
                }
            }
        }
        Assert.Empty(leaks);

        void Check(Type? type, string where)
        {
            if (type is null) return;
            if (type.HasElementType) { Check(type.GetElementType(), where); return; }
            if (type.IsGenericType) foreach (var argument in type.GetGenericArguments()) Check(argument, where);
            if (type.IsGenericParameter) return;
            if (type.Assembly.GetName().Name!.StartsWith("Microsoft.ML", StringComparison.Ordinal) && !type.IsVisible)
                leaks.Add($"{where}: {type.FullName}");
        }
    }
}
