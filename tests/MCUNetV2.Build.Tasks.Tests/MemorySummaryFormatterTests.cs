using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Build.Tasks.Tests;

[TestClass]
public sealed class MemorySummaryFormatterTests
{
    [TestMethod]
    public void Lines_AreAlignedAndComplete()
    {
        var memory = new MemorySummary(
            PerLayerPeakBytes: 196_608, PatchBasedPeakBytes: 65_536, ArenaBytes: 70_000,
            FlashBytes: 1_234_567, RamBytes: 80_000, Schedule: "patches: layers 0-12 (2x2)\nper-layer: layers 13-65");

        var lines = MemorySummaryFormatter.Format("vww", "2x2", memory);

        Assert.AreEqual("vww: memory (patch grid 2x2)", lines[0]);
        StringAssert.Contains(lines[1], "per-layer peak SRAM");
        StringAssert.Contains(lines[1], "196,608 B");
        StringAssert.Contains(lines[1], "192.0 KiB");
        StringAssert.Contains(lines[2], "patch-based peak SRAM");
        StringAssert.Contains(lines[2], "3.00x smaller than per-layer");
        StringAssert.Contains(lines[3], "arena");
        StringAssert.Contains(lines[4], "flash");
        StringAssert.Contains(lines[4], "1.18 MiB");
        StringAssert.Contains(lines[5], "RAM");
        StringAssert.Contains(lines[6], "schedule");
        StringAssert.Contains(lines[6], "patches: layers 0-12 (2x2)");
        StringAssert.Contains(lines[7], "per-layer: layers 13-65");

        // The figures line up: every ':' after a label and every " B " is in the same column.
        var colons = lines.Skip(1).Take(6).Select(l => l.IndexOf(" : ", StringComparison.Ordinal)).Distinct().ToList();
        Assert.AreEqual(1, colons.Count, string.Join("\n", lines));
        var units = lines.Skip(1).Take(5).Select(l => l.IndexOf(" B  (", StringComparison.Ordinal)).Distinct().ToList();
        Assert.AreEqual(1, units.Count, string.Join("\n", lines));
        Assert.AreEqual(lines[6].IndexOf("patches", StringComparison.Ordinal), lines[7].IndexOf("per-layer", StringComparison.Ordinal));
    }

    [TestMethod]
    public void PerLayerRun_SaysNoSaving()
    {
        var memory = new MemorySummary(1000, 1000, 1000, 2000, 1000, "");
        var lines = MemorySummaryFormatter.Format("m", "1x1", memory);
        Assert.AreEqual(6, lines.Count);
        Assert.IsFalse(lines[2].Contains("smaller"));
    }

    [TestMethod]
    public void QuantizationLine_IsAlignedBeforeVerification()
    {
        var memory = new MemorySummary(1000, 500, 500, 2000, 500, "2x2", Verification: "4 image(s)",
            Quantization: "MinMax, output SQNR 28.8 dB, top-1 agreement 12/12, worst layer LAYER_48/Conv2D PointwiseConv2D 17.4 dB");

        var lines = MemorySummaryFormatter.Format("vww", "2x2", memory);

        var q = lines.Single(l => l.TrimStart().StartsWith("quantization", StringComparison.Ordinal));
        Assert.AreEqual("  quantization          : MinMax, output SQNR 28.8 dB, top-1 agreement 12/12, worst layer LAYER_48/Conv2D PointwiseConv2D 17.4 dB", q);
        Assert.AreEqual(lines[1].IndexOf(" : ", StringComparison.Ordinal), q.IndexOf(" : ", StringComparison.Ordinal));
        Assert.IsTrue(lines.ToList().IndexOf(q) < lines.ToList().FindIndex(l => l.Contains("verified", StringComparison.Ordinal)));
    }
}
