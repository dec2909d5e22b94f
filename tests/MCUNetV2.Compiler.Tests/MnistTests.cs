using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Tests;

/// <summary>mnist-8 from the ONNX model zoo (Reshape of a constant, SAME_UPPER convs, Add-as-bias, Relu, MaxPool, MatMul).</summary>
[TestClass]
public sealed class MnistTests
{
    private static string Dir => Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8");

    internal static (float[] Input, float[] Output) DataSet(int i)
    {
        var set = Path.Combine(Dir, $"test_data_set_{i}");
        var input = ConstantTensor.Decode(Onnx.Proto.TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(set, "input_0.pb"))), set).AsFloats();
        var output = ConstantTensor.Decode(Onnx.Proto.TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(set, "output_0.pb"))), set).AsFloats();
        return (input, output);
    }

    [TestMethod]
    public void Imports_AndMatchesItsThreeTestDataSets()
    {
        var g = OnnxImporter.Load(Path.Combine(Dir, "model.onnx"));
        Assert.AreEqual(new TensorShape(28, 28, 1), g.Input.Shape);
        CollectionAssert.AreEqual(new[] { "Conv2D", "MaxPool", "Conv2D", "MaxPool", "FullyConnected" }, g.Layers.Select(l => l.Op).ToArray());
        for (int i = 0; i < 3; i++)
        {
            var (input, expected) = DataSet(i);
            var actual = FloatExecutor.Run(g, input); // one channel: NCHW == NHWC
            for (int k = 0; k < expected.Length; k++)
                Assert.AreEqual(expected[k], actual[k], 1e-3 + 1e-4 * Math.Abs(expected[k]), $"data set {i}, logit {k}");
        }
    }

    [TestMethod]
    public void Int8_OnCortexM7_MatchesTheReference_PerLayerAndPatchBased()
    {
        var g = OnnxImporter.Load(Path.Combine(Dir, "model.onnx"));
        var inputs = Enumerable.Range(0, 3).Select(i => DataSet(i).Input).ToList();
        var int8 = Quantizer.Quantize(g, CalibrationRanges.Observe(g, inputs));
        var work = Directory.CreateTempSubdirectory("mcunet-mnist-").FullName;
        try
        {
            var quantized = inputs.Select(int8.QuantizeInput).ToList();
            foreach (var plan in new[] { PatchPlanner.PerLayer(g), PatchPlanner.Build(g, 2, 2, 3) })
            {
                var dir = Path.Combine(work, plan.IsPatchBased ? "patch" : "layer");
                var src = Emission.CEmitter.Emit(int8, plan, "mnist", Path.Combine(dir, "src"));
                var tc = new ArmToolchain(new Pipeline.ToolchainOptions());
                tc.CompileObject(src.ModelSourcePath, Path.Combine(dir, "mnist.o"), new[] { Path.GetDirectoryName(src.HeaderPath)! });
                tc.Archive(new[] { Path.Combine(dir, "mnist.o") }, Path.Combine(dir, "libmnist.a"));
                var run = new QemuHarness(tc, "qemu-system-arm").Run(Path.Combine(dir, "libmnist.a"), src.HeaderPath, "mnist",
                    quantized.SelectMany(q => q.Select(b => (byte)b)).ToArray(), quantized.Count, Path.Combine(dir, "run"));
                for (int i = 0; i < quantized.Count; i++)
                {
                    var reference = Int8Executor.Run(int8, plan, quantized[i]);
                    CollectionAssert.AreEqual(reference, Int8Executor.Run(int8, quantized[i]), "patch-based == per-layer in C#");
                    CollectionAssert.AreEqual(reference.Select(b => (byte)b).ToArray(), run.Output(i).ToArray(), $"QEMU vs C# on data set {i} ({plan.Describe()})");
                    Assert.AreEqual(TestData.ArgMax(DataSet(i).Output), TestData.ArgMax(reference), $"int8 class of data set {i}");
                }
                Assert.IsTrue(run.ArenaHighWaterBytes <= plan.ArenaBytes);
            }
        }
        finally { Directory.Delete(work, true); }
    }
}

/// <summary>Weights stored outside the .onnx file (ONNX external data) load like embedded ones.</summary>
[TestClass]
public sealed class ExternalDataTests
{
    [TestMethod]
    public void ExternalData_LoadsTheSameGraph()
    {
        var dir = Directory.CreateTempSubdirectory("mcunet-external-").FullName;
        try
        {
            var source = Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx");
            var proto = Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(source));
            using (var side = File.Create(Path.Combine(dir, "weights.bin")))
            {
                foreach (var t in proto.Graph.Initializer.Where(t => t.Dims.Aggregate(1L, (a, b) => a * b) > 16))
                {
                    byte[] raw = t.RawData.Length > 0 ? t.RawData.ToByteArray() : t.FloatData.SelectMany(BitConverter.GetBytes).ToArray();
                    side.Write(new byte[(64 - side.Position % 64) % 64]);
                    long offset = side.Position;
                    side.Write(raw);
                    t.RawData = Google.Protobuf.ByteString.Empty;
                    t.FloatData.Clear();
                    t.DataLocation = Onnx.Proto.TensorProto.Types.DataLocation.External;
                    t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "location", Value = "weights.bin" });
                    t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "offset", Value = offset.ToString() });
                    t.ExternalData.Add(new Onnx.Proto.StringStringEntryProto { Key = "length", Value = raw.Length.ToString() });
                }
            }
            var model = Path.Combine(dir, "model.onnx");
            File.WriteAllBytes(model, Google.Protobuf.MessageExtensions.ToByteArray(proto));
            Assert.IsTrue(new FileInfo(model).Length < 4096, "the weights moved to the side file");
            var input = MnistTests.DataSet(0).Input;
            CollectionAssert.AreEqual(FloatExecutor.Run(OnnxImporter.Load(source), input), FloatExecutor.Run(OnnxImporter.Load(model), input));

            File.Delete(Path.Combine(dir, "weights.bin"));
            var e = Assert.ThrowsExactly<CompilerException>(() => OnnxImporter.Load(model));
            Assert.AreEqual(ErrorCodes.MissingInitializer, e.Diagnostic.Code);
            Assert.AreEqual(model, e.Diagnostic.File);
        }
        finally { Directory.Delete(dir, true); }
    }
}
