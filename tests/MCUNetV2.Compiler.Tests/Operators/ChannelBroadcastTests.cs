using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Mul and Add of a feature map and a per-channel [1,C,1,1] vector: the squeeze-and-excitation block of MobileNetV3
/// and EfficientNet (Conv -> GlobalAveragePool -> 1x1 Conv -> ReLU -> 1x1 Conv -> HardSigmoid -> Mul with the map).
/// </summary>
[TestClass]
public sealed class ChannelBroadcastTests
{
    private static string Work => TestWork.Folder("mcunet-broadcast-");

    private static readonly long[] Dims = { 1, 8, 6, 6 };

    /// <param name="vectorFirst">Mul(s, x) instead of Mul(x, s).</param>
    private static string SqueezeExcite(bool vectorFirst)
    {
        var r = new Random(5);
        IEnumerable<float> W(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * scale));
        var path = Path.Combine(Work, $"se-{vectorFirst}.onnx");
        return new OnnxModelBuilder(13).Input("x", Dims).Output("y", 1, 8, 6, 6)
            .Floats("w0", new long[] { 8, 8, 3, 3 }, W(576, 0.5)).Floats("b0", new long[] { 8 }, W(8, 0.2))
            .Floats("w1", new long[] { 4, 8, 1, 1 }, W(32, 1.0)).Floats("b1", new long[] { 4 }, W(4, 0.2))
            .Floats("w2", new long[] { 8, 4, 1, 1 }, W(32, 1.0)).Floats("b2", new long[] { 8 }, W(8, 0.2))
            .Node("Conv", new[] { "x", "w0", "b0" }, "c0", Ints("pads", 1, 1, 1, 1)).Node("Relu", new[] { "c0" }, "r0")
            .Node("GlobalAveragePool", new[] { "r0" }, "g")
            .Node("Conv", new[] { "g", "w1", "b1" }, "c1").Node("Relu", new[] { "c1" }, "r1")
            .Node("Conv", new[] { "r1", "w2", "b2" }, "c2").Node("HardSigmoid", new[] { "c2" }, "s", Float("alpha", 1 / 6f))
            .Node("Mul", vectorFirst ? new[] { "s", "r0" } : new[] { "r0", "s" }, "m")
            .Node("Add", new[] { "m", "s" }, "y") // a per-channel bias from the same vector
            .Save(path);
    }

    private static List<float[]> Inputs(int count)
    {
        var r = new Random(9);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, 288).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray()).ToList();
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void SqueezeExcite_FloatExecutor_MatchesOnnxRuntime(bool vectorFirst)
    {
        var path = SqueezeExcite(vectorFirst);
        var graph = OnnxImporter.Load(path);
        Assert.IsTrue(graph.Layers.OfType<Mul>().Single().BroadcastsB);
        Assert.IsTrue(graph.Layers.OfType<Add>().Single().BroadcastsB);
        AssertMatchesOnnxRuntime(path, graph, 3);
    }

    private static void AssertMatchesOnnxRuntime(string path, ModelGraph graph, int inputs)
    {
        using var session = new InferenceSession(path);
        foreach (var x in Inputs(inputs))
        {
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, Dims.Select(d => (int)d).ToArray())) });
            var ort = FloatExecutor.NchwToNhwc(results.First().AsEnumerable<float>().ToArray(), new TensorShape(6, 6, 8));
            var ours = FloatExecutor.Run(graph, FloatExecutor.NchwToNhwc(x, new TensorShape(6, 6, 8)));
            for (int i = 0; i < ours.Length; i++) Assert.AreEqual(ort[i], ours[i], 1e-4, $"{Path.GetFileName(path)}: element {i}");
        }
    }

    [TestMethod]
    public void SqueezeExcite_OnCortexM7_IsBitExactWithTheInt8Reference_PerLayerAndPatched()
    {
        var graph = OnnxImporter.Load(SqueezeExcite(vectorFirst: true));
        var inputs = Inputs(6).Select(x => FloatExecutor.NchwToNhwc(x, new TensorShape(6, 6, 8))).ToList();
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, inputs));
        // int8 stays close to float: within a few output steps
        double worst = Int8Agreement.WorstOutputSteps(graph, q, inputs);
        Console.WriteLine($"int8 vs float: {worst:F2} output steps");
        Assert.IsTrue(worst < 4, $"int8 differs from float by {worst:F2} output steps");
        // the broadcast ends the per-patch stage: only the first convolution runs patch by patch
        var patched = PatchPlanner.Build(graph, 2, 2, 1);
        var sources = CortexM7Check.AssertBitExact(q, new[] { ("per-layer", PatchPlanner.PerLayer(graph)), ("2x2", patched) },
            inputs.Select(q.QuantizeInput).ToList(), Work);
        StringAssert.Contains(sources[0], "mcu_mul(");
        Assert.AreEqual(1, PatchPlanner.SplitCandidates(graph, 2, 2).Max(), "GlobalAveragePool ends the spatially local prefix");
    }

    /// <summary>
    /// Other broadcasts ([1,C,H,W] - [1,C,1,1] with the vector first, a row vector [1,1,1,W], a [W] vector against a
    /// rank-3 map) expand the smaller operand with a zero-stride Relayout, then combine equal shapes.
    /// </summary>
    [TestMethod]
    public void OtherBroadcasts_ExpandTheSmallerOperand_AndMatchOnnxRuntime()
    {
        foreach (var (a, b, op) in new[] { ("s", "r0", "Sub"), ("r0", "row", "Mul"), ("row", "r0", "Add") })
        {
            var path = BroadcastModel(a, b, op);
            var graph = OnnxImporter.Load(path);
            Assert.IsTrue(graph.Layers.OfType<Relayout>().Any(r => r.Function.StartsWith("Expand")), string.Join("\n", graph.Layers));
            AssertMatchesOnnxRuntime(path, graph, 2);
        }
    }

    private static string BroadcastModel(string a, string b, string op)
    {
        var path = Path.Combine(Work, $"bcast-{op}.onnx");
        return new OnnxModelBuilder(13).Input("x", Dims).Output("y", 1, 8, 6, 6)
            .Floats("w", new long[] { 8, 8, 1, 1 }, Enumerable.Range(0, 64).Select(i => (i % 9 - 4) / 8f))
            .Floats("wr", new long[] { 6, 8, 1, 1 }, Enumerable.Range(0, 48).Select(i => (i % 7 - 3) / 5f))
            .Node("Relu", new[] { "x" }, "r0").Node("GlobalAveragePool", new[] { "x" }, "g").Node("Conv", new[] { "g", "w" }, "s")
            .Node("Conv", new[] { "g", "wr" }, "rowT").Node("Transpose", new[] { "rowT" }, "row", Ints("perm", 0, 2, 3, 1))
            .Node(op, new[] { a, b }, "y").Save(path);
    }

    [TestMethod]
    public void ExpandedBroadcast_OnCortexM7_IsBitExactWithTheInt8Reference()
    {
        var graph = OnnxImporter.Load(BroadcastModel("r0", "row", "Mul"));
        var inputs = Inputs(4).Select(x => FloatExecutor.NchwToNhwc(x, new TensorShape(6, 6, 8))).ToList();
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, inputs));
        // a product of two rounded operands: each one's half step times the other's magnitude, a few output steps
        double worst = Int8Agreement.WorstOutputSteps(graph, q, inputs);
        Assert.IsTrue(worst < 8, $"int8 differs from float by {worst:F2} output steps");
        var sources = CortexM7Check.AssertBitExact(q, new[] { ("per-layer", PatchPlanner.PerLayer(graph)) }, inputs.Select(q.QuantizeInput).ToList(), Work);
        StringAssert.Contains(sources[0], "mcu_relayout(");
    }

    [TestMethod]
    public void ShapesThatDoNotBroadcast_AreACodedError()
    {
        var path = Path.Combine(Work, "nobcast.onnx");
        new OnnxModelBuilder(13).Input("x", Dims).Input("z", 1, 8, 5, 6).Output("y", 1, 8, 6, 6)
            .Node("Add", new[] { "x", "z" }, "y").Save(path);
        var e = Assert.ThrowsExactly<CompilerException>(() => OnnxImporter.Load(path));
        Assert.AreEqual(ErrorCodes.ModelCorrupt, e.Diagnostic.Code, e.Diagnostic.Message);
        StringAssert.Contains(e.Diagnostic.Message, "do not broadcast");
    }
}
