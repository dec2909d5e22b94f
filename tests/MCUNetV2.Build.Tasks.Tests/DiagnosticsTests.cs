using System.Reflection;
using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Diagnostics;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>Every diagnostic code is documented in the README, and logged errors link to their row there.</summary>
[TestClass]
public sealed class DiagnosticsTests
{
    private static IReadOnlyList<string> Codes() =>
        typeof(ErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .Distinct()
            .ToList();

    [TestMethod]
    public void EveryCode_IsOnePrefixAndFourDigits_WithAnAnchoredReadmeRow_AndNoReadmeCodeIsUnknown()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var codes = Codes();
        Assert.IsTrue(codes.Count >= 20, string.Join(", ", codes));
        foreach (var code in codes)
        {
            Assert.IsTrue(Regex.IsMatch(code, @"^MCU\d{4}$"), code);
            StringAssert.Contains(readme, $"| <a id=\"{code.ToLowerInvariant()}\"></a>{code} |", $"README row for {code}");
        }
        var documented = Regex.Matches(readme, @"<a id=""(mcu\d{4})""></a>").Select(m => m.Groups[1].Value.ToUpperInvariant());
        CollectionAssert.IsSubsetOf(documented.ToList(), codes.ToList());
    }

    [TestMethod]
    public void TaskErrors_CarryTheHelpLinkOfTheirCode()
    {
        var s = TaskSetup.Create("helplink", Repo.VwwModel, "vww.onnx", new[] { "<TinyModel Include=\"vww.onnx\" PatchGrid=\"2by2\" />" },
            new[] { ("PatchGrid", "2by2") });
        s.Task.HelpLinkBase = "file:///opt/pkg/README.md";

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual("MCU4001", error.Code);
        Assert.AreEqual("file:///opt/pkg/README.md#mcu4001", error.HelpLink);
    }

    [TestMethod]
    public void GccDiagnostics_CarryTheHelpLinkOfMCU5002()
    {
        var dir = Repo.NewTempDir("gcc-helplink");
        var source = Path.Combine(dir, "bad.c");
        File.WriteAllText(source, "int f(void) {\n  return undeclared;\n}\n");
        var engine = new FakeBuildEngine();
        var gcc = new ArmGcc { BuildEngine = engine, Source = source, ObjectFile = Path.Combine(dir, "bad.o"), HelpLinkBase = "https://example.org/README.md" };

        Assert.IsFalse(gcc.Execute());

        var error = engine.Errors.First(e => e.Code == ErrorCodes.CompileFailed);
        Assert.AreEqual(source, error.File, engine.Transcript());
        Assert.AreEqual(2, error.LineNumber, engine.Transcript());
        Assert.AreEqual("https://example.org/README.md#mcu5002", error.HelpLink);
    }

    /// <summary>The targets' default base is the README.md beside build/ (in the package: its root) as a file: URL.</summary>
    [TestMethod]
    public void DefaultHelpLinkBase_IsTheReadmeBesideTheTargets()
    {
        var dir = Repo.NewTempDir("helplink-default");
        var project = DotnetBuild.WriteProject(dir, "");

        var r = DotnetBuild.Run(dir, "msbuild", project, "-getProperty:MCUNetV2HelpLinkBase");

        Assert.AreEqual(0, r.ExitCode, r.ToString());
        Assert.AreEqual(new Uri(Path.Combine(Repo.Root, "README.md")).AbsoluteUri, r.Output.Trim(), r.ToString());
    }

    /// <summary>
    /// In a real build (logged by <see cref="DiagnosticsLogger"/>), the errors from the targets (two items sharing a
    /// prefix) and from the task (bad metadata) carry a code and the help link of their README row, at the project file.
    /// </summary>
    [TestMethod]
    public void RealBuild_ErrorsAndWarnings_CarryCodeAndHelpLink()
    {
        var readme = new Uri(Path.Combine(Repo.Root, "README.md")).AbsoluteUri;
        var dir = Repo.NewTempDir("helplink-build");
        File.Copy(Repo.Mnist8Model, Path.Combine(dir, "mnist.onnx"));
        Directory.CreateDirectory(Path.Combine(dir, "b"));
        File.Copy(Repo.Mnist8Model, Path.Combine(dir, "b", "mnist.onnx"));

        var shared = DotnetBuild.WriteProject(dir, """
                <TinyModel Include="mnist.onnx" />
                <TinyModel Include="b/mnist.onnx" />
            """);
        var log1 = Path.Combine(dir, "shared.tsv");
        Assert.AreNotEqual(0, DotnetBuild.Run(dir, "build", shared, DiagnosticsLogger.Argument(log1)).ExitCode);

        File.Delete(shared);
        var bad = DotnetBuild.WriteProject(dir, """    <TinyModel Include="mnist.onnx" Scale="0" />""");
        var log2 = Path.Combine(dir, "bad.tsv");
        Assert.AreNotEqual(0, DotnetBuild.Run(dir, "build", bad, DiagnosticsLogger.Argument(log2)).ExitCode);

        var entries = DiagnosticsLogger.Read(log1).Concat(DiagnosticsLogger.Read(log2)).ToList();
        var listing = string.Join("\n", entries);
        Assert.AreEqual(2, entries.Count(e => e.Kind == "error" && e.Code == "MCU4001"), listing);
        foreach (var e in entries)
        {
            Assert.IsTrue(Regex.IsMatch(e.Code, @"^MCU\d{4}$"), listing);
            Assert.AreEqual($"{readme}#{e.Code.ToLowerInvariant()}", e.HelpLink, listing);
            Assert.AreEqual(Path.Combine(dir, "app.csproj"), e.File, listing);
        }
        Assert.IsTrue(entries.Any(e => e.Line > 0), listing); // the task's metadata error is at the item
    }
}

