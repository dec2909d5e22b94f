using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The MCUNetV2 paper's memory figures for MobileNetV2-1.0 at 224x224 (int8, depthwise in place, residual add fused
/// into the projection, network input streamed): per-layer inference peaks at 1,404,928 B (block 2's expansion:
/// 112x112x16 in, 112x112x96 out), patch-based on a 4x4 grid at no more than 172 KiB.
/// </summary>
[TestClass]
public sealed class MobileNetV2MemoryTests
{
    private static readonly Lazy<ModelGraph> Graph = new(() =>
    {
        var path = Path.Combine(Path.GetTempPath(), $"mcunet-mbv2-1.0-224-{Environment.ProcessId}.onnx");
        try { return OnnxImporter.Load(MobileNetV2Model.Save(path, 1.0, 224)); }
        finally { File.Delete(path); }
    });

    [TestMethod]
    public void PerLayer_PeaksAt1404928Bytes_AtBlock2sExpansion()
    {
        var g = Graph.Value;
        var plan = PatchPlanner.PerLayer(g);
        Console.WriteLine($"per-layer peak {plan.PeakLiveBytes:N0} B, arena {plan.ArenaBytes:N0} B, {g.TotalMacs:N0} MACs");
        Assert.AreEqual(1_404_928, plan.PeakLiveBytes);
        Assert.AreEqual(plan.PeakLiveBytes, plan.ArenaBytes, "the arena reaches the lower bound");
        // the peak step: the first 1x1 expansion, 112x112x16 -> 112x112x96
        int peakStep = Enumerable.Range(0, g.Layers.Count).MaxBy(s => plan.Buffers.Where(b => b.LiveAt(s)).Sum(b => (long)b.Bytes));
        var l = g.Layers[peakStep];
        Assert.AreEqual(new TensorShape(112, 112, 16), l.Inputs[0].Shape, l.ToString());
        Assert.AreEqual(new TensorShape(112, 112, 96), l.Output.Shape, l.ToString());
    }

    [TestMethod]
    public void PatchBased4x4_PeaksAtMost172KiB()
    {
        var g = Graph.Value;
        var plan = PatchSearch.BestForGrid(g, 4, 4)!;
        Console.WriteLine($"4x4: peak {plan.PeakLiveBytes:N0} B ({plan.PeakLiveBytes / 1024.0:F1} KiB), arena {plan.ArenaBytes:N0} B, {plan.Describe()}; " +
                          $"MACs {g.TotalMacs:N0} -> {plan.ExecutedMacs:N0} (+{100.0 * (plan.ExecutedMacs - g.TotalMacs) / g.TotalMacs:F1}%)");
        Assert.IsTrue(plan.PeakLiveBytes <= 172 * 1024, $"{plan.PeakLiveBytes} B");
        Assert.AreEqual(new TensorShape(28, 28, 32), plan.SplitTensor!.Shape, "the split after block 4");
    }

    [TestMethod]
    public void Auto_FindsAPlanNoWorseThanThePapers4x4()
    {
        var g = Graph.Value;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var auto = PatchSearch.Best(g, PatchSearch.DefaultMaxMacOverhead);
        Console.WriteLine($"auto ({watch.Elapsed.TotalSeconds:F1} s): {auto.GridRows}x{auto.GridCols}, {auto.Describe()}; peak {auto.PeakLiveBytes:N0} B " +
                          $"({auto.PeakLiveBytes / 1024.0:F1} KiB), MACs +{(double)auto.ExecutedMacs / g.TotalMacs - 1:P1}");
        Assert.IsTrue(auto.PeakLiveBytes <= PatchSearch.BestForGrid(g, 4, 4)!.PeakLiveBytes);
        Assert.IsTrue(auto.ExecutedMacs <= g.TotalMacs * (1 + PatchSearch.DefaultMaxMacOverhead));
    }

    [TestMethod]
    public void PatchBased4x4_IsByteIdenticalToPerLayer_InTheInt8Reference()
    {
        var g = Graph.Value;
        var r = new Random(2);
        var x = Enumerable.Range(0, g.Input.Shape.Elements).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var q = Quantization.Quantizer.Quantize(g, Quantization.CalibrationRanges.Observe(g, new[] { x }));
        var input = q.QuantizeInput(x);
        var perLayer = Quantization.Int8Executor.Run(q, input);
        var patched = Quantization.Int8Executor.Run(q, PatchSearch.BestForGrid(g, 4, 4)!, input);
        CollectionAssert.AreEqual(perLayer, patched);
    }
}

/// <summary>
/// The faster depthwise kernels (rings) and the pointwise layers' columns in the arena are trades the planner makes
/// only where memory allows: on the VWW sample and on MobileNetV2-1.0-224, per layer and on every grid with every split
/// (with the whole input, and with the streamed input's region in the arena too), the plan with rings and columns has
/// the same peak and arena as the plan with held-back rows only and the columns on the stack, and it does use both.
/// </summary>
[TestClass]
public sealed class DepthwiseRingPlanningTests
{
    private static IEnumerable<(int Rows, int Cols, int Split)> Schedules(ModelGraph g) =>
        new[] { (1, 1, 0) }.Concat(from grid in new[] { 2, 4 } from k in Enumerable.Range(1, Math.Min(16, g.Layers.Count - 1)) select (grid, grid, k));

    private static void AssertRingsKeepTheMemory(ModelGraph g, string name)
    {
        int withRings = 0, withColumns = 0;
        foreach (var (rows, cols, k) in Schedules(g))
        foreach (bool stream in k > 0 ? new[] { false, true } : new[] { false })
        {
            var rings = PatchPlanner.Build(g, rows, cols, k, stream);
            var held = PatchPlanner.Build(g, rows, cols, k, stream, depthwiseRings: false, pointwiseColumns: false);
            Assert.AreEqual(held.PeakLiveBytes, rings.PeakLiveBytes, $"{name} {rows}x{cols} split {k}, streamed {stream}: peak");
            Assert.AreEqual(held.ArenaBytes, rings.ArenaBytes, $"{name} {rows}x{cols} split {k}, streamed {stream}: arena");
            Assert.IsFalse(held.Kernels.Values.Any(kp => kp.DepthwiseRingSlots > 0 || kp.Columns != null), $"{name}: held-back rows and stack columns only");
            withRings += rings.Kernels.Values.Count(kp => kp.DepthwiseRingSlots > 0);
            withColumns += rings.Kernels.Values.Count(kp => kp.Columns != null);
        }
        Assert.IsTrue(withRings > 0, $"{name}: no depthwise layer took a ring");
        Assert.IsTrue(withColumns > 0, $"{name}: no pointwise layer took arena columns");
    }

    [TestMethod]
    public void Vww_RingsKeepPeakAndArena() => AssertRingsKeepTheMemory(OnnxImporter.Load(TestData.VwwModel), "VWW");

    [TestMethod]
    public void MobileNetV2_RingsKeepPeakAndArena()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mcunet-mbv2-rings-{Environment.ProcessId}.onnx");
        try { AssertRingsKeepTheMemory(OnnxImporter.Load(MobileNetV2Model.Save(path, 1.0, 224)), "MobileNetV2"); }
        finally { File.Delete(path); }
    }
}
