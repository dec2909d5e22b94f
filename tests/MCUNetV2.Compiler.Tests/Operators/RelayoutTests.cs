using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Export;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Operators that move data (<see cref="Relayout"/>): ShuffleNet's channel shuffle (Reshape to rank 5, Transpose,
/// Reshape back), a Keras-style NHWC detour (Transpose to [1,H,W,C], Softmax over the last axis, Transpose back),
/// Concat along the height, and Flatten at another axis. Checked against ONNX Runtime in float, and bit for bit on
/// Cortex-M7 under QEMU against the C# int8 reference, per layer and patch-based.
/// </summary>
[TestClass]
public sealed class RelayoutTests
{
    private static string Work => TestWork.Folder("mcunet-relayout-");

    private static readonly long[] InputDims = { 1, 3, 8, 8 };

    /// <summary>conv -> channel shuffle (2 groups) -> depthwise conv -> NHWC softmax detour -> concat along H with the shuffled map -> flatten at axis 2: [8, 128].</summary>
    private static string Model()
    {
        var r = new Random(11);
        IEnumerable<float> W(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * scale));
        var path = Path.Combine(Work, "shuffle.onnx");
        if (File.Exists(path)) return path;
        return new OnnxModelBuilder(13).Input("x", InputDims).Output("y", 8, 128)
            .Floats("w0", new long[] { 8, 3, 3, 3 }, W(216, 0.8)).Floats("b0", new long[] { 8 }, W(8, 0.2))
            .Floats("w1", new long[] { 8, 1, 3, 3 }, W(72, 0.8)).Floats("b1", new long[] { 8 }, W(8, 0.2))
            .Int64s("g5", new long[] { 5 }, new long[] { 1, 2, 4, 8, 8 }).Int64s("back", new long[] { 4 }, new long[] { 1, 8, 8, 8 })
            .Node("Conv", new[] { "x", "w0", "b0" }, "c0", Ints("pads", 1, 1, 1, 1)).Node("Relu", new[] { "c0" }, "r0")
            .Node("Reshape", new[] { "r0", "g5" }, "grouped").Node("Transpose", new[] { "grouped" }, "swapped", Ints("perm", 0, 2, 1, 3, 4))
            .Node("Reshape", new[] { "swapped", "back" }, "shuffled")
            .Node("Conv", new[] { "shuffled", "w1", "b1" }, "c1", Ints("pads", 1, 1, 1, 1), Int("group", 8))
            .Node("Transpose", new[] { "c1" }, "nhwc", Ints("perm", 0, 2, 3, 1))
            .Node("Softmax", new[] { "nhwc" }, "sm", Int("axis", 3))
            .Node("Transpose", new[] { "sm" }, "nchw", Ints("perm", 0, 3, 1, 2))
            .Node("Concat", new[] { "nchw", "shuffled" }, "cat", Int("axis", 2))
            .Node("Flatten", new[] { "cat" }, "y", Int("axis", 2))
            .Save(path);
    }

    private static List<float[]> Inputs(int count)
    {
        var r = new Random(4);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, 192).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray()).ToList();
    }

    private static float[] Nhwc(float[] x) => FloatExecutor.NchwToNhwc(x, new TensorShape(8, 8, 3));

    [TestMethod]
    public void DataMovingOperators_FloatExecutor_MatchesOnnxRuntime()
    {
        var path = Model();
        var graph = OnnxImporter.Load(path);
        Assert.IsTrue(graph.Layers.OfType<Relayout>().Count() >= 4, string.Join("\n", graph.Layers));
        using var session = new InferenceSession(path);
        foreach (var x in Inputs(3))
        {
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, InputDims.Select(d => (int)d).ToArray())) });
            var ort = results.First().AsEnumerable<float>().ToArray(); // [8, 128] row-major = our 1x8x128 storage
            var ours = FloatExecutor.Run(graph, Nhwc(x));
            Assert.AreEqual(ort.Length, ours.Length);
            for (int i = 0; i < ours.Length; i++) Assert.AreEqual(ort[i], ours[i], 1e-4, $"element {i}");
        }
    }

    [TestMethod]
    public void DataMovingOperators_OnCortexM7_AreBitExact_PerLayerAndPatched()
    {
        var graph = OnnxImporter.Load(Model());
        var inputs = Inputs(4).Select(Nhwc).ToList();
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, inputs));
        // a move changes no value: int8 stays within a few output steps of float
        double worst = Int8Agreement.WorstOutputSteps(graph, q, inputs);
        Assert.IsTrue(worst < 4, $"int8 differs from float by {worst:F2} output steps");
        // a data move ends the per-patch stage: the first convolution runs patch by patch
        Assert.AreEqual(1, PatchPlanner.SplitCandidates(graph, 2, 2).Max());
        var patched = PatchPlanner.Build(graph, 2, 2, 1);
        var sources = CortexM7Check.AssertBitExact(q, new[] { ("per-layer", PatchPlanner.PerLayer(graph)), ("2x2", patched) },
            inputs.Select(q.QuantizeInput).ToList(), Work);
        StringAssert.Contains(sources[0], "mcu_relayout(");
    }

    [TestMethod]
    public void DataMovingOperators_QdqExport_RunsInOnnxRuntime_CloseToTheInt8Reference()
    {
        var graph = OnnxImporter.Load(Model());
        var inputs = Inputs(3);
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, inputs.Select(Nhwc).ToList()));
        var path = Path.Combine(Work, "shuffle.qdq.onnx");
        QdqExporter.Write(q, path);
        using var session = new InferenceSession(path);
        foreach (var x in inputs)
        {
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, InputDims.Select(d => (int)d).ToArray())) });
            var ort = results.First().AsEnumerable<float>().ToArray();
            var ours = q.DequantizeOutput(Int8Executor.Run(q, q.QuantizeInput(Nhwc(x))));
            double worst = ort.Zip(ours, (a, b) => Math.Abs(a - b)).Max() / q.OutputParams.Scale;
            Assert.IsTrue(worst <= 3, $"QDQ export in ONNX Runtime differs from the int8 reference by {worst:F1} steps");
        }
    }

    [TestMethod]
    public void TensorsNoLayerCanHold_AreRefusedWhereTheyAreComputedOn()
    {
        // a rank-5 tensor fed to a Relu (not a data move) is a coded error, not a wrong result
        var path = Path.Combine(Work, "rank5-relu.onnx");
        new OnnxModelBuilder(13).Input("x", InputDims).Output("y", 1, 3, 2, 4, 8)
            .Int64s("s", new long[] { 5 }, new long[] { 1, 3, 2, 4, 8 })
            .Node("Reshape", new[] { "x", "s" }, "r").Node("Relu", new[] { "r" }, "y").Save(path);
        var e = Assert.ThrowsExactly<CompilerException>(() => OnnxImporter.Load(path));
        Assert.AreEqual(ErrorCodes.UnsupportedOperator, e.Diagnostic.Code, e.Diagnostic.Message);
        StringAssert.Contains(e.Diagnostic.Message, "[1,3,2,4,8]");
    }

    /// <summary>A Keras-style Dense layer on a channels-last map: Transpose to [1,H,W,C], MatMul by [C,N], Add a bias, Relu.</summary>
    [TestMethod]
    public void MatMulAlongTheLastAxis_MatchesOnnxRuntime_AndIsBitExactOnCortexM7()
    {
        var r = new Random(21);
        var path = Path.Combine(Work, "dense-nhwc.onnx");
        new OnnxModelBuilder(13).Input("x", InputDims).Output("y", 1, 8, 8, 5)
            .Floats("w0", new long[] { 6, 3, 3, 3 }, Enumerable.Range(0, 162).Select(_ => (float)(r.NextDouble() - 0.5)))
            .Floats("dense", new long[] { 6, 5 }, Enumerable.Range(0, 30).Select(_ => (float)(r.NextDouble() - 0.5)))
            .Floats("bias", new long[] { 5 }, Enumerable.Range(0, 5).Select(_ => (float)(r.NextDouble() - 0.5)))
            .Node("Conv", new[] { "x", "w0" }, "c0", Ints("pads", 1, 1, 1, 1)).Node("Relu", new[] { "c0" }, "r0")
            .Node("Transpose", new[] { "r0" }, "nhwc", Ints("perm", 0, 2, 3, 1))
            .Node("MatMul", new[] { "nhwc", "dense" }, "mm").Node("Add", new[] { "mm", "bias" }, "a").Node("Relu", new[] { "a" }, "y")
            .Save(path);
        var graph = OnnxImporter.Load(path);
        var inputs = Inputs(3);
        using (var session = new InferenceSession(path))
            foreach (var x in inputs)
            {
                using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, InputDims.Select(d => (int)d).ToArray())) });
                var ort = results.First().AsEnumerable<float>().ToArray(); // [1,8,8,5]: rank 4, stored as our 8x5x8 map
                var ours = FloatExecutor.Run(graph, Nhwc(x));
                // ours is the rank-4 [1,8,8,5] tensor in its storage order (H=8, W=5, C=8): back to ONNX order
                var onnx = new float[ours.Length];
                for (int c = 0; c < 8; c++) for (int h = 0; h < 8; h++) for (int w = 0; w < 5; w++) onnx[(c * 8 + h) * 5 + w] = ours[(h * 5 + w) * 8 + c];
                for (int i = 0; i < ort.Length; i++) Assert.AreEqual(ort[i], onnx[i], 1e-4, $"element {i}");
            }
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, inputs.Select(Nhwc).ToList()));
        CortexM7Check.AssertBitExact(q, new[] { ("per-layer", PatchPlanner.PerLayer(graph)) }, inputs.Select(x => q.QuantizeInput(Nhwc(x))).ToList(), Work);
    }
}
