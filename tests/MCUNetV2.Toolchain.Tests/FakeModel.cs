using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Toolchain.Tests;

/// <summary>
/// A hand-written stand-in for a generated model library: 16 input bytes, 4 output bytes, a 64-byte arena of
/// which it uses 32 (four int32 quarter sums at [0,16), a copy of the input at [16,32)).
/// Output q = (int8) sum of input quarter q. input[0] == 127 makes invoke fail; input[0] == 126 hangs.
/// </summary>
internal static class FakeModel
{
    public const int InputBytes = 16, OutputBytes = 4, ArenaBytes = 64, ArenaUsed = 32;
    public const sbyte FailMarker = 127, HangMarker = 126;

    public const string Header = """
        #ifndef FAKE_H
        #define FAKE_H
        #include <stdint.h>
        #define FAKE_INPUT_BYTES 16
        #define FAKE_OUTPUT_BYTES 4
        #define FAKE_ARENA_BYTES 64
        int fake_invoke(const int8_t *input, int8_t *output);
        #endif
        """;

    public const string Source = """
        #include "fake.h"

        int8_t fake_arena[FAKE_ARENA_BYTES] __attribute__((aligned(16)));
        const int8_t fake_version[4] = { 1, 2, 3, 4 };
        int fake_calls = 1;

        int fake_invoke(const int8_t *input, int8_t *output)
        {
            if (input[0] == 127) return 7;
            if (input[0] == 126) for (;;) { __asm__ volatile(""); }
            int32_t *sums = (int32_t *)fake_arena;
            int8_t *copy = fake_arena + 16;
            for (int i = 0; i < FAKE_INPUT_BYTES; ++i) copy[i] = input[i];
            for (int q = 0; q < 4; ++q) {
                int32_t s = 0;
                for (int i = 0; i < 4; ++i) s += copy[q * 4 + i];
                sums[q] = s;
            }
            for (int q = 0; q < 4; ++q) output[q] = (int8_t)sums[q];
            fake_calls++;
            return 0;
        }
        """;

    public static byte[] Expected(byte[] inputs)
    {
        var outputs = new byte[inputs.Length / InputBytes * OutputBytes];
        for (int s = 0; s < inputs.Length / InputBytes; s++)
            for (int q = 0; q < 4; q++)
            {
                int sum = 0;
                for (int i = 0; i < 4; i++) sum += (sbyte)inputs[s * InputBytes + q * 4 + i];
                outputs[s * OutputBytes + q] = unchecked((byte)sum);
            }
        return outputs;
    }

    /// <summary>Writes fake.h/fake.c into <paramref name="dir"/>, compiles and archives them; returns (lib, header, obj).</summary>
    public static (string Library, string Header, string Object) Build(ArmToolchain tc, string dir)
    {
        Directory.CreateDirectory(dir);
        var header = Path.Combine(dir, "fake.h");
        var source = Path.Combine(dir, "fake.c");
        File.WriteAllText(header, Header + "\n");
        File.WriteAllText(source, Source + "\n");
        var obj = Path.Combine(dir, "fake.o");
        tc.CompileObject(source, obj, new[] { dir }, "");
        var lib = Path.Combine(dir, "libfake.a");
        tc.Archive(new[] { obj }, lib);
        return (lib, header, obj);
    }
}

/// <summary>Toolchain, QEMU and a built fake library shared by the tests.</summary>
internal static class Fixture
{
    public static readonly string Root =
        Path.Combine(Path.GetTempPath(), "mcunetv2-toolchain-tests-" + Guid.NewGuid().ToString("N")[..8]);

    private static readonly Lazy<(ArmToolchain Tc, string Lib, string Header, string Obj)> Built = new(() =>
    {
        var tc = new ArmToolchain(new ToolchainOptions());
        var (lib, header, obj) = FakeModel.Build(tc, Path.Combine(Root, "fake"));
        return (tc, lib, header, obj);
    });

    public static string NewDir(string name)
    {
        var d = Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(d);
        return d;
    }

    public static void RequireToolchain()
    {
        if (ProcessRunner.FindExecutable("arm-none-eabi-gcc") == null)
            Assert.Inconclusive("arm-none-eabi-gcc is not installed");
    }

    public static void RequireQemu()
    {
        RequireToolchain();
        if (ProcessRunner.FindExecutable("qemu-system-arm") == null)
            Assert.Inconclusive("qemu-system-arm is not installed");
    }

    public static ArmToolchain Toolchain => Built.Value.Tc;
    public static string Library => Built.Value.Lib;
    public static string Header => Built.Value.Header;
    public static string Object => Built.Value.Obj;

    public static void Cleanup()
    {
        try { if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

[TestClass]
public static class AssemblySetup
{
    [AssemblyCleanup]
    public static void Cleanup() => Fixture.Cleanup();
}
