namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>arm-none-eabi-gcc and -ar as MSBuild ToolTasks: errors reach the log as MSBuild errors with file and line.</summary>
[TestClass]
public sealed class ArmToolTaskTests
{
    private static string NewDir() => Directory.CreateTempSubdirectory("mcunet-tooltask-").FullName;

    [TestMethod]
    public void CompileError_IsAnMSBuildError_AtTheFileAndLine()
    {
        var dir = NewDir();
        var source = Path.Combine(dir, "broken.c");
        File.WriteAllText(source, "int ok(void) { return 0; }\n\nint broken(void)\n{\n    return missing_symbol;\n}\n");
        var engine = new FakeBuildEngine();
        var gcc = new ArmGcc { BuildEngine = engine, Source = source, ObjectFile = Path.Combine(dir, "broken.o") };
        Assert.IsFalse(gcc.Execute());
        var error = engine.Errors.Single();
        Assert.AreEqual("MCU5002", error.Code, engine.Transcript());
        Assert.AreEqual(source, error.File);
        Assert.AreEqual(5, error.LineNumber);
        Assert.IsTrue(error.ColumnNumber > 0);
        StringAssert.Contains(error.Message, "missing_symbol");
    }

    [TestMethod]
    public void CompileAndArchive_ProduceACortexM7Library()
    {
        var dir = NewDir();
        var source = Path.Combine(dir, "good.c");
        File.WriteAllText(source, "#include <stdint.h>\nint32_t twice(int32_t x) { return 2 * x; }\n");
        var engine = new FakeBuildEngine();
        var obj = Path.Combine(dir, "obj", "good.o");
        Assert.IsTrue(new ArmGcc { BuildEngine = engine, Source = source, ObjectFile = obj }.Execute(), engine.Transcript());
        var lib = Path.Combine(dir, "libgood.a");
        Assert.IsTrue(new ArmAr { BuildEngine = engine, Library = lib, Objects = new[] { obj } }.Execute(), engine.Transcript());
        Assert.AreEqual("!<arch>", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(lib), 0, 7));
        Assert.AreEqual(0, engine.Errors.Count + engine.Warnings.Count, engine.Transcript());
    }

    [TestMethod]
    public void MissingToolchain_IsOneErrorSayingHowToInstall()
    {
        var engine = new FakeBuildEngine();
        var gcc = new ArmGcc { BuildEngine = engine, Source = "x.c", ObjectFile = "x.o", ToolchainDirectory = "/nonexistent/toolchain" };
        Assert.IsFalse(gcc.Execute());
        var error = engine.Errors.Single();
        Assert.AreEqual("MCU5001", error.Code);
        StringAssert.Contains(error.Message, "apt-get install gcc-arm-none-eabi");
    }
}
