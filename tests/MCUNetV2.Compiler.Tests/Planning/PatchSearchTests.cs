using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The joint search of grid and split (PatchGrid="auto"): never worse than layer by layer, within its MAC budget, and
/// equal to the optimum of a brute-force search that tries every grid up to 8x8 and every layer count, and accepts a
/// plan only if the C# int8 reference runs it and gives the layer-by-layer bytes.
/// </summary>
[TestClass]
public sealed class PatchSearchTests
{
    private static string Work => TestWork.Folder("mcunet-search-");

    private static QuantizedModel Quantize(ModelGraph g, int seed, out sbyte[] input)
    {
        var r = new Random(seed);
        var x = Enumerable.Range(0, g.Input.Shape.Elements).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var q = Quantizer.Quantize(g, CalibrationRanges.Observe(g, new[] { x }));
        input = q.QuantizeInput(x);
        return q;
    }

    /// <summary>A small plain CNN on a non-square input: strided 3x3 convs, a 5x5 depthwise, a max pool, a dilated 3x3 conv, a residual block, global pooling.</summary>
    private static string PlainCnn()
    {
        var r = new Random(3);
        IEnumerable<float> W(int n) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() - 0.5));
        return new OnnxModelBuilder(13).Input("x", 1, 3, 40, 36).Output("y", 1, 6)
            .Floats("w0", new long[] { 8, 3, 3, 3 }, W(216)).Floats("w1", new long[] { 8, 1, 5, 5 }, W(200))
            .Floats("w2", new long[] { 12, 8, 3, 3 }, W(864)).Floats("w3", new long[] { 12, 12, 3, 3 }, W(1296))
            .Floats("w4", new long[] { 12, 12, 3, 3 }, W(1296)).Floats("fc", new long[] { 6, 12 }, W(72))
            .Node("Conv", new[] { "x", "w0" }, "c0", OnnxModelBuilder.Ints("pads", 1, 1, 1, 1), OnnxModelBuilder.Ints("strides", 2, 2)).Node("Relu", new[] { "c0" }, "r0")
            .Node("Conv", new[] { "r0", "w1" }, "c1", OnnxModelBuilder.Ints("pads", 2, 2, 2, 2), OnnxModelBuilder.Int("group", 8))
            .Node("MaxPool", new[] { "c1" }, "p1", OnnxModelBuilder.Ints("kernel_shape", 2, 2), OnnxModelBuilder.Ints("strides", 2, 2))
            .Node("Conv", new[] { "p1", "w2" }, "c2", OnnxModelBuilder.Ints("pads", 1, 1, 1, 1)).Node("Relu", new[] { "c2" }, "r2")
            .Node("Conv", new[] { "r2", "w3" }, "c3", OnnxModelBuilder.Ints("dilations", 2, 2), OnnxModelBuilder.Ints("kernel_shape", 3, 3), OnnxModelBuilder.Ints("pads", 2, 2, 2, 2)).Node("Relu", new[] { "c3" }, "r3")
            .Node("Conv", new[] { "r3", "w4" }, "c4", OnnxModelBuilder.Ints("pads", 1, 1, 1, 1))
            .Node("Add", new[] { "c4", "r2" }, "a4")
            .Node("GlobalAveragePool", new[] { "a4" }, "g").Node("Flatten", new[] { "g" }, "f")
            .Node("Gemm", new[] { "f", "fc" }, "y", OnnxModelBuilder.Int("transB", 1))
            .Save(Path.Combine(Work, "plain.onnx"));
    }

    public static IEnumerable<object[]> SmallGraphs() => new[] { new object[] { "plain" }, new object[] { "mobilenetv2-0.35-48" } };

    private static string ModelPath(string name) => name == "plain" ? PlainCnn()
        : MobileNetV2Model.Save(Path.Combine(Work, name + ".onnx"), 0.35, 48, seed: 5, blocks: 5);

    [TestMethod]
    [DynamicData(nameof(SmallGraphs))]
    public void Auto_FindsTheOptimumOfABruteForceSearch(string name)
    {
        var g = OnnxImporter.Load(ModelPath(name));
        var q = Quantize(g, 7, out var input);
        var reference = Int8Executor.Run(q, input);
        // every grid and every layer count; a plan counts if it can be built and the int8 reference runs it exactly
        var valid = new List<ExecutionPlan>();
        for (int rows = 1; rows <= PatchSearch.MaxGridDimension; rows++)
            for (int cols = 1; cols <= PatchSearch.MaxGridDimension; cols++)
                for (int k = 1; k < g.Layers.Count && rows * cols > 1; k++)
                {
                    ExecutionPlan p;
                    try
                    {
                        p = PatchPlanner.Build(g, rows, cols, k);
                        if (!Int8Executor.Run(q, p, input).SequenceEqual(reference)) continue;
                    }
                    catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or ArgumentException) { continue; }
                    if (p.PatchRegions.Any(reg => reg.GetValueOrDefault(p.SplitTensor!).IsEmpty)) continue; // a patch with nothing to do
                    valid.Add(p);
                }
        Console.WriteLine($"{name}: {g.Layers.Count} layers, {valid.Count} valid patch plans; per-layer peak {PatchPlanner.PerLayer(g).PeakLiveBytes:N0} B");
        Assert.IsTrue(valid.Count > 50, $"only {valid.Count} valid plans");
        foreach (var overhead in new[] { 0.0, 0.1, 0.3, 1.0, 10.0 })
        {
            long budget = (long)Math.Floor(g.TotalMacs * (1 + overhead));
            var optimum = valid.Where(p => p.ExecutedMacs <= budget).Append(PatchPlanner.PerLayer(g))
                .Aggregate((a, b) => PatchSearch.Better(b, a) ? b : a);
            var found = PatchSearch.Best(g, overhead);
            Console.WriteLine($"  MaxMacOverhead {overhead:P0}: {found.GridRows}x{found.GridCols} split {found.PatchLayerCount}, peak {found.PeakLiveBytes:N0} B, " +
                              $"MACs +{(double)found.ExecutedMacs / g.TotalMacs - 1:P1}");
            Assert.AreEqual(optimum.PeakLiveBytes, found.PeakLiveBytes, $"peak at overhead {overhead}");
            Assert.AreEqual(optimum.ExecutedMacs, found.ExecutedMacs, $"MACs at overhead {overhead}");
            Assert.IsTrue(found.ExecutedMacs <= budget);
            Assert.IsTrue(found.PeakLiveBytes <= PatchPlanner.PerLayer(g).PeakLiveBytes);
        }
    }

    [TestMethod]
    public void Auto_OnTheVwwModel_BeatsEveryFixedGridWithinItsBudget()
    {
        var g = OnnxImporter.Load(TestData.VwwModel);
        var auto = PatchSearch.Best(g, PatchSearch.DefaultMaxMacOverhead);
        Console.WriteLine($"auto: {auto.Describe()}, peak {auto.PeakLiveBytes:N0} B, MACs +{(double)auto.ExecutedMacs / g.TotalMacs - 1:P1}");
        foreach (var (rows, cols) in new[] { (2, 2), (3, 3), (4, 4), (2, 4), (4, 2) })
        {
            var p = PatchSearch.BestForGrid(g, rows, cols)!;
            Console.WriteLine($"{rows}x{cols}: peak {p.PeakLiveBytes:N0} B, MACs +{(double)p.ExecutedMacs / g.TotalMacs - 1:P1}");
            if (p.ExecutedMacs <= g.TotalMacs * (1 + PatchSearch.DefaultMaxMacOverhead))
                Assert.IsTrue(auto.PeakLiveBytes <= p.PeakLiveBytes, $"{rows}x{cols}");
        }
        Assert.IsTrue(auto.IsPatchBased && auto.PeakLiveBytes < PatchPlanner.PerLayer(g).PeakLiveBytes);
    }

    [TestMethod]
    public void ChosenPlans_OfASmallMobileNetV2_AreBitExactOnCortexM7()
    {
        var g = OnnxImporter.Load(ModelPath("mobilenetv2-0.35-48"));
        var q = Quantize(g, 9, out var input);
        var r = new Random(12);
        var inputs = new List<sbyte[]> { input, Enumerable.Range(0, input.Length).Select(_ => (sbyte)r.Next(-128, 128)).ToArray() };
        var plans = new[] { ("per-layer", PatchPlanner.PerLayer(g)), ("auto-30", PatchSearch.Best(g, 0.3)), ("auto-1000", PatchSearch.Best(g, 10.0)) };
        foreach (var (name, plan) in plans) Console.WriteLine($"{name}: {plan.Describe()}, peak {plan.PeakLiveBytes:N0} B, {plan.Kernels.Count} layers in place, fused or with scratch");
        var sources = CortexM7Check.AssertBitExact(q, plans, inputs, Work);
        for (int i = 0; i < sources.Count; i++)
            Console.WriteLine($"{plans[i].Item1}: depthwise ring {Regex.Matches(sources[i], @"mcu_depthwise3x3_(?:compact_)?inplace\(").Count}, held rows {Regex.Matches(sources[i], @"mcu_depthwise_inplace\(").Count}");
        StringAssert.Contains(sources[0], "mcu_depthwise3x3_inplace(");
        StringAssert.Contains(sources[0], "mcu_pointwise_add(");
        Assert.IsTrue(sources.Any(s => s.Contains("mcu_depthwise_inplace(")), "a plan keeps held-back rows where the ring would raise the peak");
    }
}
