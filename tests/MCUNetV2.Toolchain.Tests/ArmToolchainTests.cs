using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Toolchain.Tests;

[TestClass]
public sealed class ArmToolchainTests
{
    [TestMethod]
    public void MissingToolchainDirectory_GivesMCU5001()
    {
        var dir = Path.Combine(Path.GetTempPath(), "no-such-toolchain-" + Guid.NewGuid().ToString("N"));
        var tc = new ArmToolchain(new ToolchainOptions { ToolchainDirectory = dir });

        var ex = Assert.ThrowsExactly<CompilerException>(() => tc.Locate());
        Assert.AreEqual(ErrorCodes.ToolchainMissing, ex.Diagnostic.Code);
        StringAssert.Contains(ex.Message, "arm-none-eabi-gcc not found");
        StringAssert.Contains(ex.Message, "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi");
        StringAssert.Contains(ex.Message, "MCUNetV2ToolchainDirectory");

        var ex2 = Assert.ThrowsExactly<CompilerException>(() =>
            tc.CompileObject("x.c", "x.o", Array.Empty<string>(), ""));
        Assert.AreEqual(ErrorCodes.ToolchainMissing, ex2.Diagnostic.Code);
    }

    [TestMethod]
    public void MissingPrefixOnPath_GivesMCU5001()
    {
        var tc = new ArmToolchain(new ToolchainOptions { ToolPrefix = "no-such-prefix-" + Guid.NewGuid().ToString("N") + "-" });
        var ex = Assert.ThrowsExactly<CompilerException>(() => tc.Locate());
        Assert.AreEqual(ErrorCodes.ToolchainMissing, ex.Diagnostic.Code);
        StringAssert.Contains(ex.Message, "on PATH");
    }

    [TestMethod]
    public void ExplicitToolchainDirectory_IsUsed()
    {
        Fixture.RequireToolchain();
        var gcc = ProcessRunner.FindExecutable("arm-none-eabi-gcc")!;
        var tc = new ArmToolchain(new ToolchainOptions { ToolchainDirectory = Path.GetDirectoryName(gcc)! });
        tc.Locate();
        Assert.AreEqual(Path.GetFullPath(gcc), tc.GccPath);
        Assert.IsTrue(File.Exists(tc.ArPath));
    }

    [TestMethod]
    public void SyntaxError_GivesMCU5002_AtFileAndLine()
    {
        Fixture.RequireToolchain();
        var dir = Fixture.NewDir("syntax");
        var bad = Path.Combine(dir, "bad.c");
        File.WriteAllText(bad, "#include <stdint.h>\n\nint f(int x)\n{\n    int y = x +;\n    return y\n}\n");
        var tc = Fixture.Toolchain;

        var ex = Assert.ThrowsExactly<CompilerException>(() =>
            tc.CompileObject(bad, Path.Combine(dir, "bad.o"), Array.Empty<string>(), ""));

        Assert.AreEqual(ErrorCodes.CompileFailed, ex.Diagnostic.Code);
        Assert.AreEqual(DiagnosticSeverity.Error, ex.Diagnostic.Severity);
        Assert.AreEqual("bad.c", Path.GetFileName(ex.Diagnostic.File));
        Assert.AreEqual(5, ex.Diagnostic.Line);
        Assert.IsTrue(ex.Diagnostic.Column > 0);
        Assert.IsFalse(File.Exists(Path.Combine(dir, "bad.o")));

        var all = ArmToolchain.DiagnosticsOf(ex);
        Assert.IsTrue(all.Count(d => d.Severity == DiagnosticSeverity.Error) >= 2, string.Join("\n", all));
        Assert.IsTrue(all.Any(d => d.Severity == DiagnosticSeverity.Error && (d.Line == 6 || d.Line == 7)), string.Join("\n", all));
        Assert.IsInstanceOfType<ToolOutputException>(ex.InnerException);
    }

    [TestMethod]
    public void Warnings_AreReturned()
    {
        Fixture.RequireToolchain();
        var dir = Fixture.NewDir("warn");
        var src = Path.Combine(dir, "warn.c");
        File.WriteAllText(src, "int f(void)\n{\n    int unused;\n    return 0;\n}\n");
        var diags = Fixture.Toolchain.CompileObject(src, Path.Combine(dir, "warn.o"), Array.Empty<string>(), "");
        var w = diags.Single(d => d.Severity == DiagnosticSeverity.Warning);
        Assert.AreEqual(3, w.Line);
        Assert.AreEqual("warn.c", Path.GetFileName(w.File));
        StringAssert.Contains(w.Message, "unused");
    }

    [TestMethod]
    public void Archive_ReplacesAtomically_AndLeavesNoTemporaryFiles()
    {
        Fixture.RequireToolchain();
        var dir = Fixture.NewDir("archive");
        var tc = Fixture.Toolchain;
        var a = Path.Combine(dir, "a.c");
        var b = Path.Combine(dir, "b.c");
        File.WriteAllText(a, "int a_value = 1;\nint a_func(void) { return a_value; }\n");
        File.WriteAllText(b, "char b_buffer[100];\n");
        tc.CompileObject(a, Path.Combine(dir, "a.o"), Array.Empty<string>(), "");
        tc.CompileObject(b, Path.Combine(dir, "b.o"), Array.Empty<string>(), "");
        var lib = Path.Combine(dir, "out", "libab.a");

        tc.Archive(new[] { Path.Combine(dir, "a.o"), Path.Combine(dir, "b.o") }, lib);
        Assert.AreEqual(2, ElfSizes.MeasureArchiveMembers(lib).Count);
        tc.Archive(new[] { Path.Combine(dir, "b.o") }, lib); // rebuilt from scratch, not appended
        var members = ElfSizes.MeasureArchiveMembers(lib);
        Assert.AreEqual(1, members.Count);
        Assert.AreEqual("b.o", members[0].Name);
        Assert.AreEqual(100, members[0].Sizes.Bss);
        CollectionAssert.AreEqual(new[] { "libab.a" }, Directory.GetFiles(Path.GetDirectoryName(lib)!).Select(Path.GetFileName).ToArray());

        var ex = Assert.ThrowsExactly<CompilerException>(() => tc.Archive(new[] { Path.Combine(dir, "missing.o") }, lib));
        Assert.AreEqual(ErrorCodes.ArchiveFailed, ex.Diagnostic.Code);
    }

    [TestMethod]
    public void ParseDiagnostics_ReadsCompilerAndLinkerLines()
    {
        var stderr = string.Join("\n",
            "/src/m.c: In function 'f':",
            "/src/m.c:12:5: error: 'z' undeclared (first use in this function)",
            "   12 |     z = 1;",
            "      |     ^",
            "/src/m.c:12:5: note: each undeclared identifier is reported only once",
            "/src/m.c:20: warning: old style",
            "cc1: fatal error: other.c: No such file or directory",
            "/usr/bin/arm-none-eabi-ld: /w/harness_main.o: in function `main':",
            "harness_main.c:(.text.startup.main+0x3a): undefined reference to `vww_invoke'",
            "/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: region `RAM' overflowed by 64 bytes",
            "collect2: error: ld returned 1 exit status");
        var d = ArmToolchain.ParseDiagnostics(stderr, "default.c");

        Assert.AreEqual(7, d.Count, string.Join("\n", d));
        Assert.AreEqual(new CompilerDiagnostic(DiagnosticSeverity.Error, "MCU5002", "'z' undeclared (first use in this function)", "/src/m.c", 12, 5), d[0]);
        Assert.AreEqual(DiagnosticSeverity.Message, d[1].Severity);
        Assert.AreEqual(new CompilerDiagnostic(DiagnosticSeverity.Warning, "MCU5002", "old style", "/src/m.c", 20, 0), d[2]);
        Assert.AreEqual(DiagnosticSeverity.Error, d[3].Severity);
        Assert.AreEqual("default.c", d[3].File);
        Assert.AreEqual("harness_main.c", d[4].File);
        StringAssert.Contains(d[4].Message, "undefined reference to `vww_invoke'");
        StringAssert.Contains(d[5].Message, "region `RAM' overflowed by 64 bytes");
        Assert.AreEqual(DiagnosticSeverity.Error, d[6].Severity);
    }

    [TestMethod]
    public void SplitFlags_FollowsShellWords()
    {
        CollectionAssert.AreEqual(new[] { "-mcpu=cortex-m7", "-mthumb" }, ProcessRunner.SplitFlags("  -mcpu=cortex-m7\t-mthumb ").ToArray());
        CollectionAssert.AreEqual(new[] { "-DMODEL_HEADER=\"vww.h\"", "-DX=a b" },
            ProcessRunner.SplitFlags("-DMODEL_HEADER=\"\\\"vww.h\\\"\" '-DX=a b'").ToArray());
        CollectionAssert.AreEqual(new[] { @"-IC:\tools\inc" }, ProcessRunner.SplitFlags(@"-IC:\tools\inc").ToArray());
        Assert.AreEqual(0, ProcessRunner.SplitFlags("").Count);
    }
}
