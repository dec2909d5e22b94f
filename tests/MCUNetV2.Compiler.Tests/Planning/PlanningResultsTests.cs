using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The planning table of docs/results.md: for every model of the suite, layer-by-layer vs patch-based peak SRAM, the
/// grid and split the joint search chooses, its MAC overhead and the arena's gap to the lower bound. It prints the
/// markdown rows and checks the invariants behind them (never worse than per-layer; arena >= peak).
/// </summary>
[TestClass]
public sealed class PlanningResultsTests
{
    private static string Work => TestWork.Folder("mcunet-results-");

    private static IEnumerable<(string Name, Func<string> Path)> Models() => new (string, Func<string>)[]
    {
        ("VWW sample (MobileNetV2 0.5, 128x128)", () => TestData.VwwModel),
        ("mnist-8", () => MnistAccuracyTests.Model),
        ("MobileNetV2-1.0, 224x224 (random weights)", () => MobileNetV2Model.Save(System.IO.Path.Combine(Work, "mbv2-1.0-224.onnx"), 1.0, 224)),
        ("MobileNetV2-0.35, 96x96 (random weights)", () => MobileNetV2Model.Save(System.IO.Path.Combine(Work, "mbv2-0.35-96.onnx"), 0.35, 96)),
        ("MobileNetV2-0.35, 48x48, 5 blocks (random weights)", () => MobileNetV2Model.Save(System.IO.Path.Combine(Work, "mbv2-0.35-48.onnx"), 0.35, 48, seed: 5, blocks: 5)),
    };

    private static string Kib(long b) => $"{b:N0} ({b / 1024.0:F1} KiB)";

    [TestMethod]
    public void PlanningTable_ForEveryModelOfTheSuite()
    {
        var rows = new List<string>
        {
            "| model | MACs | per-layer peak (B) | best 2x2 peak (B) | best 4x4 peak (B) | auto: grid, split after | auto peak (B) | saving | MAC overhead | arena gap (B) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        };
        foreach (var (name, path) in Models())
        {
            var g = OnnxImporter.Load(path());
            var perLayer = PatchPlanner.PerLayer(g);
            var p2 = PatchSearch.BestForGrid(g, 2, 2);
            var p4 = PatchSearch.BestForGrid(g, 4, 4);
            var auto = PatchSearch.Best(g, PatchSearch.DefaultMaxMacOverhead);
            Assert.IsTrue(auto.PeakLiveBytes <= perLayer.PeakLiveBytes, name);
            Assert.IsTrue(auto.ArenaBytes >= auto.PeakLiveBytes && perLayer.ArenaBytes >= perLayer.PeakLiveBytes, name);
            string Peak(ExecutionPlan? p) => p == null ? "-" : $"{p.PeakLiveBytes:N0}";
            string split = auto.IsPatchBased ? $"{auto.GridRows}x{auto.GridCols}, layer {auto.PatchLayerCount} ({auto.SplitTensor!.Shape})" : "per-layer";
            rows.Add($"| {name} | {g.TotalMacs:N0} | {Kib(perLayer.PeakLiveBytes)} | {Peak(p2)} | {Peak(p4)} | {split} | {Kib(auto.PeakLiveBytes)} | " +
                     $"{(double)perLayer.PeakLiveBytes / auto.PeakLiveBytes:F2}x | {(double)auto.ExecutedMacs / g.TotalMacs - 1:P1} | {auto.ArenaBytes - auto.PeakLiveBytes:N0} |");
        }
        Console.WriteLine(string.Join("\n", rows));
    }

    [TestMethod]
    public void VwwPeakByGrid()
    {
        var g = OnnxImporter.Load(TestData.VwwModel);
        var rows = new List<string>
        {
            "| grid | patch layers (split tensor) | peak SRAM (B) | arena (B) | MACs executed | MAC overhead |",
            "|---|---|---|---|---|---|",
        };
        var per = PatchPlanner.PerLayer(g);
        rows.Add($"| per-layer | - | {per.PeakLiveBytes:N0} | {per.ArenaBytes:N0} | {per.ExecutedMacs:N0} | - |");
        foreach (var (r, c) in new[] { (2, 2), (3, 3), (4, 4), (2, 4), (4, 2), (6, 6), (8, 8) })
        {
            var p = PatchSearch.BestForGrid(g, r, c)!;
            rows.Add($"| {r}x{c} | {p.PatchLayerCount} ({p.SplitTensor!.Shape}) | {p.PeakLiveBytes:N0} | {p.ArenaBytes:N0} | {p.ExecutedMacs:N0} | {(double)p.ExecutedMacs / g.TotalMacs - 1:P1} |");
        }
        Console.WriteLine(string.Join("\n", rows));
        Assert.IsTrue(rows.Count > 3);
    }
}
