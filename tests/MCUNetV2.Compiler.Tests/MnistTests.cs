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
