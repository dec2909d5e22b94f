using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MCUNetV2.Compiler.Tests;

/// <summary>The real VWW sample model on all 15 images: float vs ONNX Runtime, int8 vs float, patch vs per-layer.</summary>
[TestClass]
public sealed class VwwModelTests
{
    private static ModelGraph _graph = null!;
    private static QuantizedModel _int8 = null!;
    private static List<float[]> _inputs = null!;

    [ClassInitialize]
    public static void Load(TestContext _)
    {
        _graph = OnnxImporter.Load(TestData.VwwModel);
        _inputs = TestData.VwwImages.Select(i => TestData.VwwInput(i.Path, _graph.Input.Shape)).ToList();
        _int8 = Quantizer.Quantize(_graph, CalibrationRanges.Observe(_graph, _inputs));
    }

    private static float[] RunOnnxRuntime(InferenceSession session, float[] nhwc)
    {
        var s = _graph.Input.Shape;
        var nchw = new float[nhwc.Length];
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++)
                for (int c = 0; c < s.C; c++)
                    nchw[(c * s.H + y) * s.W + x] = nhwc[(y * s.W + x) * s.C + c];
        var tensor = new DenseTensor<float>(nchw, new[] { 1, s.C, s.H, s.W });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(_graph.OnnxInputName, tensor) });
        return results.First().AsEnumerable<float>().ToArray();
    }

    [TestMethod]
    public void Import_FoldsTheExporterPatterns()
    {
        Assert.AreEqual(new TensorShape(128, 128, 3), _graph.Input.Shape);
        Assert.AreEqual(new TensorShape(1, 1, 2), _graph.Output.Shape);
        var ops = _graph.Layers.Select(l => l.Op).ToList();
        CollectionAssert.DoesNotContain(ops, "BatchNormalization");
        Assert.AreEqual("Softmax", ops[^1]);
        Assert.AreEqual("FullyConnected", ops[^2]);
        Assert.AreEqual(10, ops.Count(o => o == "Add"), "MobileNetV2 has ten residual adds");
    }

    [TestMethod]
    public void FloatExecutor_MatchesOnnxRuntime_OnAllImages()
    {
        using var session = new InferenceSession(TestData.VwwModel);
        for (int i = 0; i < _inputs.Count; i++)
        {
            var expected = RunOnnxRuntime(session, _inputs[i]);
            var actual = FloatExecutor.Run(_graph, _inputs[i]);
            for (int k = 0; k < expected.Length; k++)
                Assert.IsTrue(Math.Abs(actual[k] - expected[k]) <= 1e-4 * Math.Abs(expected[k]) + 1e-7,
                    $"{Path.GetFileName(TestData.VwwImages[i].Path)} output {k}: ours {actual[k]}, ONNX Runtime {expected[k]}");
            Assert.AreEqual(TestData.VwwImages[i].Label, TestData.ArgMax(expected), "ONNX Runtime classifies every image correctly");
        }
    }

    [TestMethod]
    public void Int8_ClassEqualsFloatClass_OnAllImages()
    {
        var lines = new List<string>();
        for (int i = 0; i < _inputs.Count; i++)
        {
            var f = FloatExecutor.Run(_graph, _inputs[i]);
            var q = _int8.DequantizeOutput(Int8Executor.Run(_int8, _int8.QuantizeInput(_inputs[i])));
            lines.Add($"{Path.GetFileName(TestData.VwwImages[i].Path)}: float person {f[1]:F3}, int8 person {q[1]:F3}");
            Assert.AreEqual(TestData.ArgMax(f), TestData.ArgMax(q), string.Join("\n", lines));
        }
        Console.WriteLine(string.Join("\n", lines));
    }

    [TestMethod]
    [DataRow(2, 2)]
    [DataRow(3, 3)]
    [DataRow(4, 4)]
    [DataRow(2, 5)]
    public void Int8_PatchBased_IsByteIdenticalToPerLayer(int rows, int cols)
    {
        // the chosen split, the deepest possible one (residual blocks and stride-2 layers inside the patch stage) and one between
        var candidates = PatchPlanner.SplitCandidates(_graph, rows, cols).ToList();
        var best = PatchSearch.BestForGrid(_graph, rows, cols)!.PatchLayerCount;
        foreach (var k in new[] { best, candidates[^1], candidates[candidates.Count / 2] }.Distinct())
        {
            var plan = PatchPlanner.Build(_graph, rows, cols, k);
            foreach (var input in new[] { _inputs[0], _inputs[^1] })
            {
                var q = _int8.QuantizeInput(input);
                CollectionAssert.AreEqual(Int8Executor.Run(_int8, q), Int8Executor.Run(_int8, plan, q), $"{rows}x{cols} split after layer {k}");
            }
        }
    }

    [TestMethod]
    public void PatchPlan_2x2_NeedsLessSramThanPerLayer()
    {
        var perLayer = PatchPlanner.PerLayer(_graph);
        var patch = PatchSearch.BestForGrid(_graph, 2, 2)!;
        Console.WriteLine($"per-layer peak {perLayer.PeakLiveBytes} arena {perLayer.ArenaBytes}; 2x2 peak {patch.PeakLiveBytes} arena {patch.ArenaBytes}: {patch.Describe()}; MACs {perLayer.ExecutedMacs} -> {patch.ExecutedMacs}");
        Assert.IsTrue(patch.PeakLiveBytes < perLayer.PeakLiveBytes);
        Assert.IsTrue(patch.ArenaBytes >= patch.PeakLiveBytes);
    }
}
