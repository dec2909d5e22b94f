using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// mcu_depthwise3x3_inplace, both rings (three rows, and the tall ring), on random shapes, regions, data and
/// requantization forms (dwcheck.c), against mcu_depthwise, the portable kernel the random networks hold against the
/// C# int8 reference: on the host (portable C, ASan/UBSan) and under QEMU (the Cortex-M7 asm paths).
/// </summary>
[TestClass]
public sealed class DepthwiseRingKernelTests
{
    private static string Work => TestWork.Folder("mcunet-dwcheck-");

    /// <summary>What every sample must have exercised (dwcheck.h: DWCHECK_RING ... DWCHECK_64BIT).</summary>
    private const int Everything = 0x3ff;

    private static byte[] Seeds => new byte[] { 1, 0, 0, 0, 2, 0, 0, 0, 77, 1, 0, 0 };

    private static void AssertNoMismatch(ReadOnlySpan<byte> output, string label)
    {
        int mismatches = BitConverter.ToInt32(output[..4]), seen = BitConverter.ToInt32(output[4..8]);
        Assert.AreEqual(0, mismatches, $"{label}: cases that differ from mcu_depthwise");
        Assert.AreEqual(Everything, seen & Everything, $"{label}: cases exercised 0x{seen:x}");
    }

    [TestMethod]
    public void RandomCases_OnHost_MatchThePortableKernel()
    {
        var output = HostBuild.RunCheck("dwcheck", Seeds, Path.Combine(Work, "host"));
        for (int i = 0; i < 3; i++) AssertNoMismatch(output.AsSpan(i * 8, 8), $"host, seed {i}");
    }

    [TestMethod]
    public void RandomCases_OnCortexM7_MatchThePortableKernel()
    {
        var dir = Path.Combine(Work, "m7");
        Directory.CreateDirectory(dir);
        var here = Path.Combine(TestData.RepoRoot, "tests", "MCUNetV2.Compiler.Tests", "Host");
        var runtime = Path.Combine(TestData.RepoRoot, "src", "MCUNetV2.Compiler", "Emission", "Runtime");
        var tc = new ArmToolchain(new ToolchainOptions());
        tc.CompileObject(Path.Combine(here, "dwcheck.c"), Path.Combine(dir, "dwcheck.o"), new[] { here, runtime }, "-Wextra -Werror");
        tc.Archive(new[] { Path.Combine(dir, "dwcheck.o") }, Path.Combine(dir, "libdwcheck.a"));
        var run = new QemuHarness(tc, "qemu-system-arm").Run(Path.Combine(dir, "libdwcheck.a"), Path.Combine(here, "dwcheck.h"), "dwcheck",
            Seeds, 3, Path.Combine(dir, "run"));
        for (int i = 0; i < 3; i++) AssertNoMismatch(run.Output(i), $"Cortex-M7, seed {i}");
    }
}
