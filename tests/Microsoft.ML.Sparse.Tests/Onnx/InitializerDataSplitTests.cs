using Google.Protobuf;
using Microsoft.ML.Sparse.Onnx;
using Microsoft.ML.Sparse.Onnx.Schema;
using Microsoft.ML.Sparse.Onnx.Synthetic;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// The engine's load parses models with the initializers' raw_data split off and decodes those from the file's bytes
/// (<see cref="InitializerDataSplit"/>): it must read the same model, the same tensors and the same errors as a whole parse.
/// </summary>
public sealed class InitializerDataSplitTests
{
    public static TheoryData<string> RealModels =>
    [
        "mobilenet_v1_1.0_224.onnx", "mobilenet_v2_1.0_224.onnx", "torchvision_efficientnet_b0.onnx", "torchvision_mobilenet_v3_small.onnx",
    ];

    [Theory]
    [MemberData(nameof(RealModels))]
    public void RealModel_SplitReadGivesTheSameGraphAndTensors(string model) =>
        AssertSameAsWholeParse(SharedData.Require(Path.Combine("models", model)));

    [Fact]
    public void GeneratedModelWithMixedEncodings_SplitReadGivesTheSameGraphAndTensors()
    {
        // float_data, raw float, raw int64 and a raw_data field written twice (protobuf keeps the last).
        var model = ModelProto.Parser.ParseFrom(SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Seed = 3, PointwiseSparsity = 0.8f, WidthMultiplier = 0.25f, Resolution = 32, Classes = 10 }));
        var typed = new TensorProto { Name = "typed", DataType = (int)TensorProto.Types.DataType.Float };
        typed.Dims.Add(3);
        typed.FloatData.AddRange([1f, -2f, 3.5f]);
        model.Graph.Initializer.Add(typed);
        var ints = new TensorProto { Name = "ints", DataType = (int)TensorProto.Types.DataType.Int64, RawData = ByteString.CopyFrom(BitConverter.GetBytes(42L)) };
        ints.Dims.Add(1);
        model.Graph.Initializer.Add(ints);
        byte[] bytes = model.ToByteArray();
        var twice = new TensorProto { Name = "twice", DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(BitConverter.GetBytes(9f)) };
        twice.Dims.Add(1);
        // Appending a graph field merges into the graph: one more initializer whose raw_data appears twice.
        var extra = new GraphProto();
        extra.Initializer.Add(twice);
        byte[] extraGraph = extra.ToByteArray();
        byte[] secondRaw = [0x4A, 4, .. BitConverter.GetBytes(7f)]; // field 9, length 4
        int tensorLength = extraGraph.Length - 2 + secondRaw.Length; // the tensor is the graph's only field: tag + 1-byte length
        byte[] graphPayload = [0x2A, (byte)tensorLength, .. extraGraph[2..], .. secondRaw];
        byte[] appended = [.. bytes, 0x3A, (byte)graphPayload.Length, .. graphPayload];
        string path = Path.Combine(Path.GetTempPath(), $"split-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, appended);
        try
        {
            AssertSameAsWholeParse(path);
            var split = OnnxModelFile.Read(path, splitWeights: true);
            Assert.Equal([7f], split.ReadTensor(split.Graph.Initializer.Single(t => t.Name == "twice")).Floats!);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void DamagedModels_FailAsAWholeParseDoes()
    {
        byte[] bytes = SyntheticMobileNet.Create(new SyntheticMobileNetOptions { Seed = 5, WidthMultiplier = 0.25f, Resolution = 32, Classes = 10 });
        var random = new Random(11);
        for (int trial = 0; trial < 300; trial++)
        {
            byte[] damaged = trial % 2 == 0
                ? bytes[..random.Next(bytes.Length)]
                : Corrupt(bytes, random);
            string whole = Outcome(() => Describe(OnnxModelFile.Read(damaged)));
            string split = Outcome(() => Describe(OnnxModelFile.Read(damaged, splitWeights: true)));
            Assert.Equal(whole, split);
        }
    }

    private static byte[] Corrupt(byte[] bytes, Random random)
    {
        byte[] copy = (byte[])bytes.Clone();
        for (int i = 0; i < 4; i++) copy[random.Next(copy.Length)] = (byte)random.Next(256);
        return copy;
    }

    private static void AssertSameAsWholeParse(string path)
    {
        var whole = OnnxModelFile.Read(path);
        var split = OnnxModelFile.Read(path, splitWeights: true);
        Assert.Equal(whole.Graph.Initializer.Count, split.Graph.Initializer.Count);
        for (int i = 0; i < whole.Graph.Initializer.Count; i++)
        {
            OnnxTensor expected = whole.ReadTensor(whole.Graph.Initializer[i]), actual = split.ReadTensor(split.Graph.Initializer[i]);
            Assert.Equal(expected.Dims, actual.Dims);
            Assert.Equal(expected.Floats, actual.Floats);
            Assert.Equal(expected.Longs, actual.Longs);
        }
        // Everything but the initializers' raw_data parsed the same.
        var stripped = whole.Model.Clone();
        foreach (var tensor in stripped.Graph.Initializer) tensor.ClearRawData();
        Assert.Equal(stripped, split.Model);
    }

    /// <summary>
    /// The tensors a read gives, as text; the first error stops it (a split read decodes while reading, a whole parse when
    /// the tensors are read, in the same order, so either way the first bad tensor's error is the outcome).
    /// </summary>
    private static string Describe(OnnxModelFile file) =>
        string.Join(";", file.Graph.Initializer.ToList().Select(t =>
        {
            var tensor = file.ReadTensor(t);
            return $"{t.Name}[{string.Join(",", tensor.Dims)}]={string.Join(",", (tensor.Floats ?? []).Select(BitConverter.SingleToInt32Bits))}{string.Join(",", tensor.Longs ?? [])}";
        }));

    private static string Outcome(Func<string> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is OnnxModelException)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }
}
