using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Toolchain.Tests;

[TestClass]
public sealed class QemuHarnessTests
{
    private static QemuHarness NewHarness() => new(Fixture.Toolchain, "qemu-system-arm");

    /// <summary>Three samples; sample 0 ends (arena top byte = input[15]) with the first paint pattern 0xA5.</summary>
    private static byte[] Inputs()
    {
        var rng = new Random(1234);
        var inputs = new byte[3 * FakeModel.InputBytes];
        rng.NextBytes(inputs);
        for (int s = 0; s < 3; s++) inputs[s * FakeModel.InputBytes] = (byte)(s * 10); // not a fail/hang marker
        inputs[15] = 0xA5;
        inputs[FakeModel.InputBytes + 15] = 0x5A;
        return inputs;
    }

    [TestMethod]
    public void FakeModel_OutputsArenaStackAndInstructions()
    {
        Fixture.RequireQemu();
        var inputs = Inputs();
        var work = Fixture.NewDir("run");

        var r = NewHarness().Run(Fixture.Library, Fixture.Header, "fake", inputs, 3, work, countInstructions: true,
            timeout: TimeSpan.FromSeconds(30));

        CollectionAssert.AreEqual(FakeModel.Expected(inputs), r.Outputs);
        Assert.AreEqual(3, r.SampleCount);
        Assert.AreEqual(FakeModel.InputBytes, r.InputBytesPerSample);
        Assert.AreEqual(FakeModel.OutputBytes, r.OutputBytesPerSample);
        Assert.AreEqual(FakeModel.ArenaBytes, r.ArenaBytes);
        Assert.AreEqual(FakeModel.ArenaUsed, r.ArenaHighWaterBytes);
        Assert.IsTrue(r.StackHighWaterBytes >= 0 && r.StackHighWaterBytes < 1024, $"stack {r.StackHighWaterBytes}");
        Assert.IsNotNull(r.InstructionsPerSample);
        Assert.AreEqual(3, r.InstructionsPerSample.Count);
        foreach (var n in r.InstructionsPerSample)
        {
            Assert.IsTrue(n > 0, "instructions counted");
            Assert.IsTrue(n < 10_000, $"{n} instructions for a 16-byte fake");
            Assert.AreEqual(0, n % QemuHarness.InstructionsPerTick);
        }
        StringAssert.Contains(r.StandardOutput, "3 samples done");
        Assert.IsTrue(File.Exists(r.ElfPath));
        CollectionAssert.AreEqual(inputs, File.ReadAllBytes(Path.Combine(work, "input.bin")));
        Assert.IsTrue(r.Elapsed < TimeSpan.FromSeconds(10), $"QEMU took {r.Elapsed}");

        // The harness ELF: ElfSizes agrees with arm-none-eabi-size, the arena symbol is linked in.
        var size = Fixture.Toolchain.FindTool("size")!;
        var gnu = ProcessRunner.Run(size, new[] { r.ElfPath }).StandardOutput.Split('\n')[1]
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Take(3).Select(long.Parse).ToArray();
        var mine = ElfSizes.Measure(r.ElfPath);
        CollectionAssert.AreEqual(gnu, new[] { mine.Text, mine.Data, mine.Bss });
        Assert.AreEqual(FakeModel.ArenaBytes, ElfSizes.SymbolSize(r.ElfPath, "fake_arena"));
    }

    [TestMethod]
    public void WithoutCounting_NoInstructions()
    {
        Fixture.RequireQemu();
        var inputs = Inputs()[..FakeModel.InputBytes];
        var r = NewHarness().Run(Fixture.Library, Fixture.Header, "fake", inputs, 1, Fixture.NewDir("nocount"));
        Assert.IsNull(r.InstructionsPerSample);
        CollectionAssert.AreEqual(FakeModel.Expected(inputs), r.Outputs);
        Assert.AreEqual(FakeModel.ArenaUsed, r.ArenaHighWaterBytes);
    }

    [TestMethod]
    public void InvokeFailure_GivesMCU5005()
    {
        Fixture.RequireQemu();
        var inputs = Inputs();
        inputs[FakeModel.InputBytes] = unchecked((byte)FakeModel.FailMarker); // sample 1 fails
        var ex = Assert.ThrowsExactly<CompilerException>(() =>
            NewHarness().Run(Fixture.Library, Fixture.Header, "fake", inputs, 3, Fixture.NewDir("fail")));
        Assert.AreEqual(ErrorCodes.QemuFailed, ex.Diagnostic.Code);
        StringAssert.Contains(ex.Message, "invoke returned 7 for sample 1");
    }

    [TestMethod]
    public void Hang_TimesOut_GivesMCU5005()
    {
        Fixture.RequireQemu();
        var inputs = Inputs()[..FakeModel.InputBytes];
        inputs[0] = unchecked((byte)FakeModel.HangMarker);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var ex = Assert.ThrowsExactly<CompilerException>(() =>
            NewHarness().Run(Fixture.Library, Fixture.Header, "fake", inputs, 1, Fixture.NewDir("hang"),
                timeout: TimeSpan.FromSeconds(1.5)));
        Assert.AreEqual(ErrorCodes.QemuFailed, ex.Diagnostic.Code);
        StringAssert.Contains(ex.Message, "did not finish");
        Assert.IsTrue(watch.Elapsed < TimeSpan.FromSeconds(20));
    }

    [TestMethod]
    public void WrongInputLength_IsRejected()
    {
        Fixture.RequireQemu();
        var inputs = new byte[3 * 10]; // 3 samples of 10 bytes, but the model takes 16
        Assert.ThrowsExactly<ArgumentException>(() =>
            NewHarness().Run(Fixture.Library, Fixture.Header, "fake", inputs, 3, Fixture.NewDir("len")));
        Assert.ThrowsExactly<ArgumentException>(() =>
            NewHarness().Run(Fixture.Library, Fixture.Header, "fake", new byte[16], 3, Fixture.NewDir("len2")));
    }

    [TestMethod]
    public void MissingQemu_GivesMCU5004()
    {
        Fixture.RequireToolchain();
        var harness = new QemuHarness(Fixture.Toolchain, "/nonexistent/qemu-system-arm");
        var ex = Assert.ThrowsExactly<CompilerException>(() =>
            harness.Run(Fixture.Library, Fixture.Header, "fake", new byte[16], 1, Fixture.NewDir("noqemu")));
        Assert.AreEqual(ErrorCodes.QemuMissing, ex.Diagnostic.Code);
        StringAssert.Contains(ex.Message, "sudo apt-get install qemu-system-arm");
    }

    [TestMethod]
    public void HarnessSources_AreEmbedded()
    {
        var dir = Fixture.NewDir("extract");
        var files = QemuHarness.ExtractHarnessSources(dir);
        Assert.AreEqual(3, files.Count);
        foreach (var f in files) Assert.IsTrue(new FileInfo(f).Length > 100, f);
        StringAssert.Contains(File.ReadAllText(Path.Combine(dir, "startup.c")), "0xE000ED88");
    }
}
