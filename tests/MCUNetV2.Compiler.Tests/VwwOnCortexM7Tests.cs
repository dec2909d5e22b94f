using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The VWW sample compiled to Cortex-M7 libraries (per-layer and 2x2 patches) and run under QEMU on all 15 images:
/// QEMU bytes == C# int8 reference bytes, and the two libraries agree byte for byte.
/// </summary>
[TestClass]
public sealed class VwwOnCortexM7Tests
{
    private static string Work => TestWork.Folder("mcunet-vww-");

    private static TinyModelOptions Options(int rows, int cols, bool auto = false, string? split = null, bool stream = false, string optimization = "-O2") => new()
    {
        StreamInput = stream,
        ModelPath = TestData.VwwModel,
        OutputDirectory = Path.Combine(Work, (auto ? "auto" : $"{rows}x{cols}{split}") + (stream ? "-streamed" : "") + optimization),
        Toolchain = new ToolchainOptions { OptimizationFlags = optimization },
        Prefix = "vww",
        PatchRows = rows,
        PatchCols = cols,
        AutoPatchGrid = auto,
        PatchSplit = split,
        CalibrationFiles = TestData.VwwImages.Select(i => i.Path).ToList(),
        Verify = true,
        VerifyImages = 1,
    };

    private static (TinyModelResult Result, TinyModelBuilder.CompiledModel Model) Build(int rows, int cols, bool auto = false)
    {
        var options = Options(rows, cols, auto);
        var sink = new RecordingSink();
        var result = TinyModelBuilder.Build(options, sink);
        Assert.IsTrue(result.Succeeded, string.Join("\n", sink.Diagnostics));
        return (result, TinyModelBuilder.Compile(options, sink));
    }

    /// <summary>
    /// The sample at the other optimisation levels a project may pick, per layer and on 2x2 patches, verified under QEMU
    /// by the build (its first image against the C# reference): GCC inlines the kernels into the model's invoke
    /// differently at each level, which is where an asm operand constraint that holds at -O2 by luck shows.
    /// </summary>
    [TestMethod]
    [DataRow("-Os")]
    [DataRow("-O3")]
    public void Libraries_AtOtherOptimisationLevels_MatchTheInt8Reference(string flags)
    {
        foreach (var (rows, cols) in new[] { (1, 1), (2, 2) })
        {
            var sink = new RecordingSink();
            var result = TinyModelBuilder.Build(Options(rows, cols, optimization: flags), sink);
            Assert.IsTrue(result.Succeeded, $"{flags} {rows}x{cols}: " + string.Join("\n", sink.Diagnostics));
            StringAssert.Contains(result.Memory!.Verification, "byte-identical to the C# int8 reference", $"{flags} {rows}x{cols}");
        }
    }

    [TestMethod]
    public void PatchBasedAndPerLayerLibraries_MatchTheInt8Reference_OnAllImages()
    {
        var (perLayer, model) = Build(1, 1);
        var (patch, _) = Build(2, 2);
        var (auto, autoModel) = Build(1, 1, auto: true);
        Assert.AreEqual((4, 4), (autoModel.Plan.GridRows, autoModel.Plan.GridCols), autoModel.Plan.Describe());
        Assert.IsTrue(patch.Memory!.PatchBasedPeakBytes < perLayer.Memory!.PerLayerPeakBytes,
            $"2x2 peak {patch.Memory.PatchBasedPeakBytes} vs per-layer {perLayer.Memory.PerLayerPeakBytes}");
        var inputs = model.CalibrationInputs.Select(model.Int8.QuantizeInput).ToList();
        var bytes = inputs.SelectMany(q => q.Select(b => (byte)b)).ToArray();
        var harness = new QemuHarness(new ArmToolchain(new ToolchainOptions()), "qemu-system-arm");
        var runPerLayer = harness.Run(perLayer.LibraryPath!, perLayer.HeaderPath!, "vww", bytes, inputs.Count, Path.Combine(Work, "run1x1"));
        var runPatch = harness.Run(patch.LibraryPath!, patch.HeaderPath!, "vww", bytes, inputs.Count, Path.Combine(Work, "run2x2"));
        var runAuto = harness.Run(auto.LibraryPath!, auto.HeaderPath!, "vww", bytes, inputs.Count, Path.Combine(Work, "runauto"));
        for (int i = 0; i < inputs.Count; i++)
        {
            var name = Path.GetFileName(TestData.VwwImages[i].Path);
            var reference = Int8Executor.Run(model.Int8, inputs[i]).Select(b => (byte)b).ToArray();
            CollectionAssert.AreEqual(reference, runPerLayer.Output(i).ToArray(), $"per-layer library vs C# reference on {name}");
            CollectionAssert.AreEqual(reference, runPatch.Output(i).ToArray(), $"2x2 library vs C# reference on {name}");
            CollectionAssert.AreEqual(reference, runAuto.Output(i).ToArray(), $"auto (4x4) library vs C# reference on {name}");
            Assert.AreEqual(TestData.VwwImages[i].Label, TestData.ArgMax(reference.Select(b => (sbyte)b).ToArray()), $"int8 class of {name}");
        }
        Assert.IsTrue(runPatch.ArenaHighWaterBytes <= patch.Memory.ArenaBytes);
        Assert.IsTrue(runPerLayer.ArenaHighWaterBytes <= perLayer.Memory.ArenaBytes);
        Assert.IsTrue(runAuto.ArenaHighWaterBytes <= auto.Memory!.ArenaBytes);
        Console.WriteLine($"per-layer: peak {perLayer.Memory.PerLayerPeakBytes} arena {perLayer.Memory.ArenaBytes} high-water {runPerLayer.ArenaHighWaterBytes} flash {perLayer.Memory.FlashBytes}");
        Console.WriteLine($"2x2: peak {patch.Memory.PatchBasedPeakBytes} arena {patch.Memory.ArenaBytes} high-water {runPatch.ArenaHighWaterBytes} flash {patch.Memory.FlashBytes}");
        Console.WriteLine($"auto (4x4): peak {auto.Memory.PatchBasedPeakBytes} arena {auto.Memory.ArenaBytes} high-water {runAuto.ArenaHighWaterBytes} flash {auto.Memory.FlashBytes}");
    }

    [TestMethod]
    public void PatchSplit_ForcesTheSplit_OrIsMCU3001WhenTheGridCannotSplitThere()
    {
        var forced = TinyModelBuilder.Compile(Options(2, 2, split: "6"), new RecordingSink());
        Assert.AreEqual(6, forced.Plan.PatchLayerCount, forced.Plan.Describe());
        var e = Assert.ThrowsExactly<CompilerException>(() => TinyModelBuilder.Compile(Options(2, 2, split: "64"), new RecordingSink()));
        Assert.AreEqual(ErrorCodes.BadPatchGrid, e.Diagnostic.Code);
        StringAssert.Contains(e.Diagnostic.Message, "Possible splits");
        e = Assert.ThrowsExactly<CompilerException>(() => TinyModelBuilder.Compile(Options(2, 2, split: "no-such-layer"), new RecordingSink()));
        Assert.AreEqual(ErrorCodes.BadPatchGrid, e.Diagnostic.Code);
    }

    [TestMethod]
    public void StreamInput_ReadsEachPatchsRegion_AndGivesTheSameBytes()
    {
        var options = Options(1, 1, auto: true, stream: true);
        var sink = new RecordingSink();
        var result = TinyModelBuilder.Build(options, sink);
        Assert.IsTrue(result.Succeeded, string.Join("\n", sink.Diagnostics));
        var header = File.ReadAllText(result.HeaderPath!);
        StringAssert.Contains(header, "int vww_invoke_streamed(vww_read_input_fn read, void *ctx, int8_t *output);");
        var json = File.ReadAllText(result.MemoryReportPath!);
        StringAssert.Contains(json, "\"streamedInputRegionBytes\"");
        // the harness ran every sample through both entry points (it fails when they differ); the log says how many regions it read
        Assert.IsTrue(sink.Messages.Any(m => m.Contains("also through vww_invoke_streamed")), string.Join("\n", sink.Messages));
        var compiled = TinyModelBuilder.Compile(options, new RecordingSink());
        Console.WriteLine($"streamed: {compiled.Plan.Describe()}, peak {compiled.Plan.PeakLiveBytes:N0} B including {compiled.Plan.InputStaging!.Bytes:N0} B of input region; " +
                          $"with the whole frame instead: {compiled.Plan.PeakLiveBytesWithInput:N0} B");
        Assert.IsTrue(compiled.Plan.PeakLiveBytes < compiled.PerLayer.PeakLiveBytesWithInput);
    }
}
