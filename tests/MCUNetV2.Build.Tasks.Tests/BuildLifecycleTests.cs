using System.IO.Compression;
using System.Text.RegularExpressions;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>
/// Incremental, interrupted, parallel and clean builds of projects that import build/MCUNetV2.Build.props|targets, on
/// mnist-8 (small, so each build takes seconds), judged from `-v:n` build logs and the files left behind.
/// </summary>
[TestClass]
public sealed class BuildLifecycleTests
{
    private const string Compiling = "mnist: compiling ";

    private static string MnistDir(string name, params string[] modelNames)
    {
        var dir = Repo.NewTempDir(name);
        foreach (var model in modelNames.DefaultIfEmpty("mnist.onnx"))
            File.Copy(Repo.Mnist8Model, Path.Combine(dir, model));
        Directory.CreateDirectory(Path.Combine(dir, "digits"));
        File.Copy(Repo.MnistDigits, Path.Combine(dir, "digits", Path.GetFileName(Repo.MnistDigits)));
        foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddHours(-1));
        return dir;
    }

    private static string Item(string model, string extra = "") =>
        $"""    <TinyModel Include="{model}" Calibration="digits/*.gz" CalibrationLimit="10" ChannelOrder="Gray" Mean="0" Scale="1" {extra} />""";

    private static string ModelDir(string dir, string prefix) => Path.Combine(dir, "bin", "Debug", "net10.0", "tinymodels", prefix);

    private static DotnetBuild.Result Build(string dir, string project, params string[] args)
    {
        var r = DotnetBuild.Run(dir, new[] { "build", project, "-v:n" }.Concat(args).ToArray());
        Assert.AreEqual(0, r.ExitCode, r.ToString());
        return r;
    }

    private static void AssertRebuilt(DotnetBuild.Result r, string why) =>
        Assert.IsTrue(r.Output.Contains(Compiling, StringComparison.Ordinal), $"{why} rebuilds the model\n{r}");

    /// <summary>
    /// A second build runs none of the TinyModel work; touching the model, a metadata value (PatchGrid, preprocessing)
    /// or a property from the command line rebuilds it; -bl binlogs carry the generated files and reports; `dotnet clean`
    /// removes every output.
    /// </summary>
    [TestMethod]
    public void SecondBuildDoesNoWork_InputsRebuild_BinlogEmbedsOutputs_CleanRemovesAll()
    {
        var dir = MnistDir("lifecycle");
        var project = DotnetBuild.WriteProject(dir, Item("mnist.onnx", """PatchGrid="$(Grid)" Interpolation="$(Sampling)" Verify="false" """),
            """
                <Grid Condition="'$(Grid)' == ''">1x1</Grid>
                <Sampling Condition="'$(Sampling)' == ''">Bilinear</Sampling>
            """);
        var modelDir = ModelDir(dir, "mnist");
        var cache = Path.Combine(dir, "obj", "Debug", "net10.0", "tinymodels", "mnist.inputs.cache");

        // MSBuild leaves files under its temp folder out of the binlog: give the build another one than this project's.
        var buildTemp = Directory.CreateDirectory(Path.Combine(dir, "build-tmp")).FullName + "/";
        var first = DotnetBuild.Run(new DotnetBuild.Settings(new Dictionary<string, string> { ["TMPDIR"] = buildTemp }), dir,
            "build", project, "-v:n", $"-bl:{Path.Combine(dir, "first.binlog")};ProjectImports=ZipFile");
        Assert.AreEqual(0, first.ExitCode, first.ToString());
        AssertRebuilt(first, "a first build");
        using (var imports = ZipFile.OpenRead(Path.Combine(dir, "first.ProjectImports.zip")))
        {
            var embedded = string.Join("\n", imports.Entries.Select(e => e.FullName));
            foreach (var name in new[] { "mnist.h", "mnist.c", "mcunet_kernels.h", "mnist.memory.json", "mnist.memory.html", "mnist.inputs.cache" })
                Assert.IsTrue(imports.Entries.Any(e => e.FullName.Replace('\\', '/').EndsWith("/" + name, StringComparison.Ordinal)), $"{name} not in the binlog:\n{embedded}");
        }

        PackageTests.AssertNoTinyModelWork(Build(dir, project));

        File.SetLastWriteTimeUtc(Path.Combine(dir, "mnist.onnx"), DateTime.UtcNow);
        AssertRebuilt(Build(dir, project), "a touched model");

        var grid = Build(dir, project, "-p:Grid=2x2");
        AssertRebuilt(grid, "a new PatchGrid");
        StringAssert.Contains(grid.Output, "mnist: memory (patch grid 2x2)", grid.ToString());
        AssertRebuilt(Build(dir, project, "-p:Grid=2x2", "-p:Sampling=Nearest"), "a new Interpolation (preprocessing)");
        AssertRebuilt(Build(dir, project, "-p:Grid=2x2", "-p:Sampling=Nearest", "-p:MCUNetV2OptimizationFlags=-Os"), "a property on the command line");
        PackageTests.AssertNoTinyModelWork(Build(dir, project, "-p:Grid=2x2", "-p:Sampling=Nearest", "-p:MCUNetV2OptimizationFlags=-Os"));

        var clean = DotnetBuild.Run(dir, "clean", project, "-p:Grid=2x2", "-p:Sampling=Nearest", "-p:MCUNetV2OptimizationFlags=-Os");
        Assert.AreEqual(0, clean.ExitCode, clean.ToString());
        Assert.IsFalse(Directory.Exists(modelDir), clean.ToString());
        Assert.IsFalse(File.Exists(cache), clean.ToString());
        Assert.AreEqual(0, Directory.GetFileSystemEntries(Path.GetDirectoryName(modelDir)!).Length, clean.ToString());
    }

    /// <summary>
    /// A build killed in the middle of the TinyModel task (while the compiler works in its staging folder) leaves nothing
    /// the next build takes as fresh: that build compiles the model again; clean removes the left-over staging folder.
    /// </summary>
    [TestMethod]
    public void BuildKilledMidway_IsNotTakenAsFresh()
    {
        var dir = MnistDir("killed");
        var project = DotnetBuild.WriteProject(dir, Item("mnist.onnx", """VerifyImages="0" """));
        var root = Path.GetDirectoryName(ModelDir(dir, "mnist"))!;
        var library = Path.Combine(ModelDir(dir, "mnist"), "libmnist.a");
        Build(dir, project);
        var model = Path.Combine(dir, "mnist.onnx");
        File.SetLastWriteTimeUtc(model, DateTime.UtcNow);

        bool Staging() => Directory.Exists(root) && Directory.GetDirectories(root, ".mnist.staging-*").Length > 0;
        var killed = DotnetBuild.Run(new DotnetBuild.Settings(KillWhen: Staging), dir, "build", project, "-v:n");
        Assert.AreEqual(-1, killed.ExitCode, "the build was to be killed in the TinyModel task\n" + killed);
        Assert.IsTrue(!File.Exists(library) || File.GetLastWriteTimeUtc(library) < File.GetLastWriteTimeUtc(model), killed.ToString());

        var next = Build(dir, project);
        AssertRebuilt(next, "an interrupted build");
        Assert.IsTrue(File.GetLastWriteTimeUtc(library) > File.GetLastWriteTimeUtc(model), next.ToString());

        var clean = DotnetBuild.Run(dir, "clean", project);
        Assert.AreEqual(0, clean.ExitCode, clean.ToString());
        Assert.AreEqual(0, Directory.GetFileSystemEntries(root).Length, string.Join("\n", Directory.GetFileSystemEntries(root)) + "\n" + clean);
    }

    /// <summary>
    /// Two TinyModel items in one project and a third in another project, built together with -m: every model gets
    /// its own folder; MCUNetV2CopyOutputsTo copies the libraries and headers to a firmware folder, and clean removes
    /// the copies.
    /// </summary>
    [TestMethod]
    public void SeveralItemsAndProjects_BuiltInParallel_DoNotCollide_AndCopyOutputs()
    {
        var root = Repo.NewTempDir("parallel");
        var a = MnistDir("a", "mnist.onnx", "digits_b.onnx");
        var b = MnistDir("b");
        var firmware = Path.Combine(root, "firmware", "models");
        var projectA = DotnetBuild.WriteProject(a, Item("mnist.onnx", """Verify="false" """) + "\n" + Item("digits_b.onnx", """Verify="false" """),
            $"""    <MCUNetV2CopyOutputsTo>{firmware}/</MCUNetV2CopyOutputsTo>""");
        var projectB = Path.Combine(b, "b.csproj"); // a solution wants distinct project names
        File.Move(DotnetBuild.WriteProject(b, Item("mnist.onnx", """Verify="false" """)), projectB);
        var solution = Path.Combine(root, "all.slnx");
        File.WriteAllText(solution, $"""
            <Solution>
              <Project Path="{projectA}" />
              <Project Path="{projectB}" />
            </Solution>
            """);

        var r = DotnetBuild.Run(root, "build", solution, "-m:2", "-v:n");
        Assert.AreEqual(0, r.ExitCode, r.ToString());
        foreach (var library in new[]
                 {
                     Path.Combine(ModelDir(a, "mnist"), "libmnist.a"), Path.Combine(ModelDir(a, "digits_b"), "libdigits_b.a"),
                     Path.Combine(ModelDir(b, "mnist"), "libmnist.a"),
                 })
            Assert.IsTrue(File.Exists(library), library + "\n" + r);
        Assert.AreEqual(2, Regex.Matches(r.Output, "mnist: compiling ").Count, r.ToString());
        CollectionAssert.AreEquivalent(new[] { "libmnist.a", "mnist.h", "libdigits_b.a", "digits_b.h" },
            Directory.GetFiles(firmware).Select(Path.GetFileName).ToArray(), r.ToString());

        var clean = DotnetBuild.Run(root, "clean", solution, "-m:2");
        Assert.AreEqual(0, clean.ExitCode, clean.ToString());
        Assert.AreEqual(0, Directory.GetFiles(firmware).Length, clean.ToString());
        Assert.IsFalse(Directory.Exists(ModelDir(a, "digits_b")) || Directory.Exists(ModelDir(b, "mnist")), clean.ToString());
    }

    /// <summary>An IDE background (design-time) build of a valid project runs neither the compiler, gcc nor QEMU.</summary>
    [TestMethod]
    public void DesignTimeBuild_RunsNoCompilerGccOrQemu()
    {
        var dir = MnistDir("designtime-valid");
        var project = DotnetBuild.WriteProject(dir, Item("mnist.onnx"));

        var r = DotnetBuild.Run(dir, "build", project, "-p:DesignTimeBuild=true", "-v:n");

        Assert.AreEqual(0, r.ExitCode, r.ToString());
        Assert.IsFalse(r.Output.Contains(Compiling, StringComparison.Ordinal) || r.Output.Contains("arm-none-eabi", StringComparison.Ordinal)
                       || r.Output.Contains("QEMU", StringComparison.Ordinal), r.ToString());
        Assert.IsFalse(Directory.Exists(Path.GetDirectoryName(ModelDir(dir, "mnist"))), r.ToString());
    }

    /// <summary>A missing arm-none-eabi toolchain or QEMU is one coded error that says how to install it.</summary>
    [TestMethod]
    [DataRow("-p:MCUNetV2ToolchainDirectory=/nonexistent/arm-toolchain", "MCU5001", "apt-get install gcc-arm-none-eabi", "MCUNetV2ToolchainDirectory")]
    [DataRow("-p:MCUNetV2QemuPath=/nonexistent/qemu-system-arm", "MCU5004", "apt-get install qemu-system-arm", "MCUNetV2QemuPath")]
    public void MissingTool_IsOneErrorThatSaysHowToInstallIt(string property, string code, string install, string setting)
    {
        var dir = MnistDir("notool");
        var project = DotnetBuild.WriteProject(dir, Item("mnist.onnx", """VerifyImages="1" """));

        var r = DotnetBuild.Run(dir, "build", project, property, "-v:n");

        Assert.AreNotEqual(0, r.ExitCode, r.ToString());
        var errors = Regex.Matches(r.Output, @": error (\w+): (.*)$", RegexOptions.Multiline).DistinctBy(m => m.Value).ToList();
        Assert.AreEqual(1, errors.Count, r.ToString()); // (the console repeats it in its summary)
        StringAssert.Contains(r.Output, "1 Error(s)", r.ToString());
        Assert.AreEqual(code, errors[0].Groups[1].Value, r.ToString());
        StringAssert.Contains(errors[0].Groups[2].Value, install, r.ToString());
        StringAssert.Contains(errors[0].Groups[2].Value, setting, r.ToString());
        Assert.IsFalse(r.Output.Contains("calibration data:", StringComparison.Ordinal), "found before any work\n" + r);
        Assert.IsFalse(File.Exists(Path.Combine(ModelDir(dir, "mnist"), "libmnist.a")), r.ToString());
    }
}
