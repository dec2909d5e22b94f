using System.Text.RegularExpressions;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>build/MCUNetV2.Build.targets driven by real `dotnet build` runs of small projects.</summary>
[TestClass]
public sealed class TargetsTests
{
    private static string NewProjectDir(string name, int calibrationImages = 2)
    {
        var dir = Repo.NewTempDir(name);
        File.Copy(Repo.VwwModel, Path.Combine(dir, "vww.onnx"));
        var calib = Directory.CreateDirectory(Path.Combine(dir, "calib", "person")).FullName;
        foreach (var image in Directory.GetFiles(Repo.PersonImages, "*.png").OrderBy(f => f, StringComparer.Ordinal).Take(calibrationImages))
            File.Copy(image, Path.Combine(calib, Path.GetFileName(image)));
        // Inputs older than anything the builds write, so timestamps decide only what the test means them to.
        foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddHours(-1));
        return dir;
    }

    private static void AssertNoStackTraceAndCodedErrors(DotnetBuild.Result r)
    {
        Assert.IsFalse(Regex.IsMatch(r.Output, @"^\s+at [\w.`<>]+\(", RegexOptions.Multiline), r.ToString());
        foreach (Match m in Regex.Matches(r.Output, @"error (\w+):"))
            Assert.IsTrue(Regex.IsMatch(m.Groups[1].Value, @"^MCU\d{4}$"), r.ToString());
    }

    [TestMethod]
    public void BadPatchGrid_FailsTheBuild_WithMCU4001_AtTheItem()
    {
        var dir = NewProjectDir("badgrid");
        var project = DotnetBuild.WriteProject(dir,
            """    <TinyModel Include="vww.onnx" PatchGrid="2by2" Calibration="calib/**/*.png" />""");
        int line = File.ReadAllLines(project).ToList().FindIndex(l => l.Contains("2by2")) + 1;

        var r = DotnetBuild.Run(dir, "build", project);

        Assert.AreNotEqual(0, r.ExitCode, r.ToString());
        StringAssert.Contains(r.Output, $"app.csproj({line},35): error MCU4001:", r.ToString());
        StringAssert.Contains(r.Output, "PatchGrid '2by2'");
        AssertNoStackTraceAndCodedErrors(r);
    }

    [TestMethod]
    public void SharedPrefix_IsRefusedByTheTargets()
    {
        var dir = NewProjectDir("prefix");
        Directory.CreateDirectory(Path.Combine(dir, "b"));
        File.Copy(Path.Combine(dir, "vww.onnx"), Path.Combine(dir, "b", "VWW.onnx"));
        var project = DotnetBuild.WriteProject(dir,
            """
                <TinyModel Include="vww.onnx" />
                <TinyModel Include="b/VWW.onnx" />
            """);

        var r = DotnetBuild.Run(dir, "build", project);

        Assert.AreNotEqual(0, r.ExitCode, r.ToString());
        StringAssert.Contains(r.Output, "error MCU4001: Two TinyModel items share a prefix", r.ToString());
        StringAssert.Contains(r.Output, "b/VWW.onnx -> vww", r.ToString()); // the targets' default prefix, as the task computes it
    }

    [TestMethod]
    public void DesignTimeAndDisabledBuilds_DoNotRunTheTask()
    {
        var dir = NewProjectDir("designtime");
        var project = DotnetBuild.WriteProject(dir, """    <TinyModel Include="vww.onnx" PatchGrid="bad" />""");

        var designTime = DotnetBuild.Run(dir, "build", project, "-p:DesignTimeBuild=true");
        Assert.AreEqual(0, designTime.ExitCode, designTime.ToString());

        var disabled = DotnetBuild.Run(dir, "build", project, "-p:MCUNetV2Enabled=false");
        Assert.AreEqual(0, disabled.ExitCode, disabled.ToString());
    }

    /// <summary>
    /// Up-to-date outputs skip the task; a newer calibration image runs it again; clean removes the model folder.
    /// Independent of how far the compiler core is: the up-to-date case never reaches it.
    /// </summary>
    [TestMethod]
    public void IncrementalBuild_AndClean()
    {
        var dir = NewProjectDir("incremental");
        var project = DotnetBuild.WriteProject(dir,
            """    <TinyModel Include="vww.onnx" PatchGrid="2x2" Calibration="calib/**/*.png" Verify="false" />""");
        var modelDir = Path.Combine(dir, "bin", "Debug", "net10.0", "tinymodels", "vww");
        var outputs = new[] { "libvww.a", "vww.h", "vww.memory.json", "vww.memory.html" }.Select(f => Path.Combine(modelDir, f)).ToArray();

        // 1: whatever the core does now, the log is clean.
        var first = DotnetBuild.Run(dir, "build", project);
        AssertNoStackTraceAndCodedErrors(first);
        if (first.ExitCode == 0)
        {
            Assert.IsTrue(outputs.All(File.Exists), first.ToString());
            StringAssert.Contains(first.Output, "patch-based peak SRAM", first.ToString());
            StringAssert.Contains(first.Output, $"vww -> {outputs[0]}", first.ToString());
        }
        StringAssert.Contains(File.ReadAllText(Path.Combine(dir, "obj", "Debug", "net10.0", "tinymodels", "vww.inputs.cache")),
            "patchgrid=2x2");

        // 2: outputs newer than every input: the task is skipped and the build succeeds.
        Directory.CreateDirectory(modelDir);
        var stamp = DateTime.UtcNow;
        foreach (var output in outputs)
        {
            if (!File.Exists(output))
                File.WriteAllText(output, "placeholder");
            File.SetLastWriteTimeUtc(output, stamp);
        }
        var second = DotnetBuild.Run(dir, "build", project);
        Assert.AreEqual(0, second.ExitCode, second.ToString());
        Assert.AreEqual(stamp, File.GetLastWriteTimeUtc(outputs[0]), second.ToString());

        // 3: a changed calibration image makes the model build again.
        var image = Directory.GetFiles(Path.Combine(dir, "calib", "person")).First();
        File.SetLastWriteTimeUtc(image, stamp.AddSeconds(5));
        var third = DotnetBuild.Run(dir, "build", project);
        AssertNoStackTraceAndCodedErrors(third);
        Assert.IsTrue(third.ExitCode != 0 || File.GetLastWriteTimeUtc(outputs[0]) != stamp, third.ToString());

        // 4: so does a changed property (through the inputs cache, rewritten now), once outputs are up to date again.
        File.SetLastWriteTimeUtc(image, DateTime.UtcNow.AddHours(-1));
        var stamp4 = DateTime.UtcNow;
        foreach (var output in outputs)
        {
            if (!File.Exists(output))
                File.WriteAllText(output, "placeholder");
            File.SetLastWriteTimeUtc(output, stamp4);
        }
        var fourth = DotnetBuild.Run(dir, "build", project, "-p:MCUNetV2OptimizationFlags=-Os");
        AssertNoStackTraceAndCodedErrors(fourth);
        Assert.IsTrue(fourth.ExitCode != 0 || File.GetLastWriteTimeUtc(outputs[0]) != stamp4, fourth.ToString());
        StringAssert.Contains(File.ReadAllText(Path.Combine(dir, "obj", "Debug", "net10.0", "tinymodels", "vww.inputs.cache")),
            "optimization=-Os");

        // 5: clean removes what the model build wrote.
        foreach (var output in outputs.Where(o => !File.Exists(o)))
            File.WriteAllText(output, "placeholder");
        var clean = DotnetBuild.Run(dir, "clean", project, "-p:MCUNetV2OptimizationFlags=-Os");
        Assert.AreEqual(0, clean.ExitCode, clean.ToString());
        Assert.IsFalse(outputs.Any(File.Exists), clean.ToString());
    }

    /// <summary>
    /// mnist-8 calibrated on an IDX file (the committed MNIST digits, gzip): the build succeeds with the QEMU verification,
    /// the new metadata is in the inputs cache, an unchanged build skips the model, and a changed CalibrationLimit,
    /// ResizeMode, CalibrationMethod or BiasCorrection (through the cache) builds it again; the HTML report is an output.
    /// </summary>
    [TestMethod]
    public void IdxCalibration_Builds_AndItsMetadataRebuildsTheModel()
    {
        var dir = Repo.NewTempDir("idx");
        File.Copy(Repo.Mnist8Model, Path.Combine(dir, "mnist.onnx"));
        Directory.CreateDirectory(Path.Combine(dir, "digits"));
        File.Copy(Repo.MnistDigits, Path.Combine(dir, "digits", Path.GetFileName(Repo.MnistDigits)));
        foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddHours(-1));
        var project = DotnetBuild.WriteProject(dir,
            """    <TinyModel Include="mnist.onnx" Calibration="digits/*.gz" CalibrationLimit="$(Limit)" ResizeMode="$(Resize)" CalibrationMethod="$(Method)" BiasCorrection="$(Bias)" PointwiseWeights="$(Weights)" ChannelOrder="Gray" Mean="0" Scale="1" VerifyImages="3" />""",
            """    <Limit Condition="'$(Limit)' == ''">200</Limit>""");
        var library = Path.Combine(dir, "bin", "Debug", "net10.0", "tinymodels", "mnist", "libmnist.a");
        var cacheFile = Path.Combine(dir, "obj", "Debug", "net10.0", "tinymodels", "mnist.inputs.cache");

        var first = DotnetBuild.Run(dir, "build", project);
        Assert.AreEqual(0, first.ExitCode, first.ToString());
        AssertNoStackTraceAndCodedErrors(first);
        Assert.IsTrue(File.Exists(library), first.ToString());
        StringAssert.Contains(first.Output, "3 image(s) under QEMU Cortex-M7 byte-identical", first.ToString());
        var cache = File.ReadAllText(cacheFile);
        foreach (var line in new[] { "calibrationlimit=200", "resizemode=", "interpolation=Bilinear", "inputlayout=NCHW", "calibrationmethod=\n",
                     "calibrationpercentile=99.99", "biascorrection=\n", "minlayersqnr=10", "dequantizeoutput=false", "pointwiseweights=\n", "calibration=" + Path.Combine(dir, "digits", Path.GetFileName(Repo.MnistDigits)) })
            StringAssert.Contains(cache, line, cache);

        var stamp = File.GetLastWriteTimeUtc(library);
        var second = DotnetBuild.Run(dir, "build", project);
        Assert.AreEqual(0, second.ExitCode, second.ToString());
        Assert.AreEqual(stamp, File.GetLastWriteTimeUtc(library), "nothing changed: the model is not rebuilt\n" + second);

        var third = DotnetBuild.Run(dir, "build", project, "-p:Limit=50");
        Assert.AreEqual(0, third.ExitCode, third.ToString());
        Assert.AreNotEqual(stamp, File.GetLastWriteTimeUtc(library), "a new CalibrationLimit rebuilds the model\n" + third);
        StringAssert.Contains(File.ReadAllText(cacheFile), "calibrationlimit=50");

        stamp = File.GetLastWriteTimeUtc(library);
        var fourth = DotnetBuild.Run(dir, "build", project, "-p:Limit=50", "-p:Resize=CenterCrop");
        Assert.AreEqual(0, fourth.ExitCode, fourth.ToString());
        Assert.AreNotEqual(stamp, File.GetLastWriteTimeUtc(library), "a new ResizeMode rebuilds the model\n" + fourth);
        StringAssert.Contains(File.ReadAllText(cacheFile), "resizemode=CenterCrop");
        var html = Path.Combine(Path.GetDirectoryName(library)!, "mnist.memory.html");
        Assert.IsTrue(File.Exists(html), fourth.ToString());
        // mnist-8 with the default MinLayerSqnr (10 dB): no MCU2005
        Assert.IsFalse(fourth.Output.Contains("warning MCU", StringComparison.Ordinal), fourth.ToString());
        StringAssert.Contains(fourth.Output, "quantization          : MinMax, output SQNR", fourth.ToString());

        stamp = File.GetLastWriteTimeUtc(library);
        var fifth = DotnetBuild.Run(dir, "build", project, "-p:Limit=50", "-p:Resize=CenterCrop", "-p:Method=Percentile");
        Assert.AreEqual(0, fifth.ExitCode, fifth.ToString());
        Assert.AreNotEqual(stamp, File.GetLastWriteTimeUtc(library), "a new CalibrationMethod rebuilds the model\n" + fifth);
        StringAssert.Contains(File.ReadAllText(cacheFile), "calibrationmethod=Percentile");
        StringAssert.Contains(fifth.Output, "quantization          : Percentile(99.99), output SQNR", fifth.ToString());

        stamp = File.GetLastWriteTimeUtc(library);
        var sixth = DotnetBuild.Run(dir, "build", project, "-p:Limit=50", "-p:Resize=CenterCrop", "-p:Method=Percentile", "-p:Bias=true");
        Assert.AreEqual(0, sixth.ExitCode, sixth.ToString());
        Assert.AreNotEqual(stamp, File.GetLastWriteTimeUtc(library), "BiasCorrection rebuilds the model\n" + sixth);
        StringAssert.Contains(sixth.Output, "Percentile(99.99) + bias correction, output SQNR", sixth.ToString());
        Assert.IsTrue(File.GetLastWriteTimeUtc(html) >= File.GetLastWriteTimeUtc(library), sixth.ToString());

        // int16 pointwise weights: rebuilt, more flash, still byte-identical under QEMU
        stamp = File.GetLastWriteTimeUtc(library);
        var seventh = DotnetBuild.Run(dir, "build", project, "-p:Limit=50", "-p:Resize=CenterCrop", "-p:Method=Percentile", "-p:Bias=true", "-p:Weights=int16");
        Assert.AreEqual(0, seventh.ExitCode, seventh.ToString());
        Assert.AreNotEqual(stamp, File.GetLastWriteTimeUtc(library), "PointwiseWeights rebuilds the model\n" + seventh);
        StringAssert.Contains(File.ReadAllText(cacheFile), "pointwiseweights=int16");
        StringAssert.Contains(seventh.Output, "3 image(s) under QEMU Cortex-M7 byte-identical", seventh.ToString());
    }

    /// <summary>A calibration file that cannot be decoded fails the build with MCU2002 at the file, not a stack trace.</summary>
    [TestMethod]
    public void UnreadableCalibrationFile_FailsWithMCU2002()
    {
        var dir = Repo.NewTempDir("badcalib");
        File.Copy(Repo.Mnist8Model, Path.Combine(dir, "mnist.onnx"));
        Directory.CreateDirectory(Path.Combine(dir, "digits"));
        var bad = Path.Combine(dir, "digits", "broken.npy");
        File.WriteAllText(bad, "not numpy");
        var project = DotnetBuild.WriteProject(dir,
            """    <TinyModel Include="mnist.onnx" Calibration="digits/*" ChannelOrder="Gray" Mean="0" Scale="1" Verify="false" />""");

        var r = DotnetBuild.Run(dir, "build", project);

        Assert.AreNotEqual(0, r.ExitCode, r.ToString());
        StringAssert.Contains(r.Output, "broken.npy : error MCU2002: cannot read calibration file", r.ToString());
        AssertNoStackTraceAndCodedErrors(r);
    }

    /// <summary>
    /// TinyModelMaxSramBytes is the project-wide default of MaxSramBytes: too small, the build fails with MCU3003 before
    /// anything is written; raised on the command line, the model builds, and ExportQdq puts the QDQ model in the model
    /// folder, where the incremental check expects it.
    /// </summary>
    [TestMethod]
    public void SramBudgetProperty_AndExportQdq_GoThroughTheTargets()
    {
        var dir = NewProjectDir("budget");
        var project = DotnetBuild.WriteProject(dir,
            """    <TinyModel Include="vww.onnx" Calibration="calib/**/*.png" Verify="false" ExportQdq="true" />""",
            """    <TinyModelMaxSramBytes>64K</TinyModelMaxSramBytes>""");
        var modelDir = Path.Combine(dir, "bin", "Debug", "net10.0", "tinymodels", "vww");
        var qdq = Path.Combine(modelDir, "vww.qdq.onnx");

        var tooSmall = DotnetBuild.Run(dir, "build", project);
        Assert.AreNotEqual(0, tooSmall.ExitCode, tooSmall.ToString());
        StringAssert.Contains(tooSmall.Output, "vww.onnx : error MCU3003:", tooSmall.ToString()); // at the model
        StringAssert.Contains(tooSmall.Output, "MaxSramBytes = 65,536 bytes", tooSmall.ToString());
        AssertNoStackTraceAndCodedErrors(tooSmall);
        Assert.IsFalse(Directory.Exists(modelDir), tooSmall.ToString());
        var cache = File.ReadAllText(Path.Combine(dir, "obj", "Debug", "net10.0", "tinymodels", "vww.inputs.cache"));
        StringAssert.Contains(cache, "maxsrambytes=64K");
        StringAssert.Contains(cache, "exportqdq=true");

        var fits = DotnetBuild.Run(dir, "build", project, "-p:TinyModelMaxSramBytes=1M");
        Assert.AreEqual(0, fits.ExitCode, fits.ToString());
        Assert.IsTrue(File.Exists(qdq), fits.ToString());
        var stamp = File.GetLastWriteTimeUtc(qdq);

        // up to date: skipped; without the QDQ model the model is built again
        var again = DotnetBuild.Run(dir, "build", project, "-p:TinyModelMaxSramBytes=1M");
        Assert.AreEqual(0, again.ExitCode, again.ToString());
        Assert.AreEqual(stamp, File.GetLastWriteTimeUtc(qdq), again.ToString());
        File.Delete(qdq);
        var rebuilt = DotnetBuild.Run(dir, "build", project, "-p:TinyModelMaxSramBytes=1M");
        Assert.AreEqual(0, rebuilt.ExitCode, rebuilt.ToString());
        Assert.IsTrue(File.Exists(qdq), rebuilt.ToString());
    }
}
