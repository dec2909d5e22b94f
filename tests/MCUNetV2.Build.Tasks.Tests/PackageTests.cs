using System.IO.Compression;
using System.Xml.Linq;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>
/// End to end: the packed MCUNetV2.Build package restored from a local feed into an isolated cache and used by projects
/// outside the repository, as a PackageReference and as a project SDK.
/// </summary>
[TestClass]
public sealed class PackageTests
{
    [TestMethod]
    public void Package_HasBuildSdkTasksAndRuntime_AndNoMSBuildAssemblies()
    {
        var feed = LocalFeed.Shared;
        using var zip = ZipFile.OpenRead(feed.Package);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
        var listing = string.Join("\n", names.Order(StringComparer.Ordinal));
        foreach (var expected in new[]
                 {
                     "build/MCUNetV2.Build.props", "build/MCUNetV2.Build.targets",
                     "buildTransitive/MCUNetV2.Build.props", "buildTransitive/MCUNetV2.Build.targets",
                     "Sdk/Sdk.props", "Sdk/Sdk.targets",
                     "tasks/net10.0/MCUNetV2.Build.Tasks.dll", "tasks/net10.0/MCUNetV2.Build.Tasks.deps.json",
                     "tasks/net10.0/MCUNetV2.Compiler.dll", "tasks/net10.0/Google.Protobuf.dll", "tasks/net10.0/StbImageSharp.dll",
                     "runtime/mcunet_kernels.h", "README.md",
                 })
            Assert.IsTrue(names.Contains(expected), $"missing {expected} in\n{listing}");
        Assert.IsFalse(names.Any(n => n.Contains("Microsoft.Build", StringComparison.OrdinalIgnoreCase) && n.EndsWith(".dll", StringComparison.Ordinal)), listing);
        Assert.IsFalse(names.Any(n => n.StartsWith("lib/", StringComparison.Ordinal)), listing);

        using var nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var metadata = XDocument.Load(nuspecStream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Value(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;
        Assert.AreEqual(feed.Version, Value("version"));
        Assert.AreEqual("true", Value("developmentDependency"));
        var types = metadata.Descendants().Where(e => e.Name.LocalName == "packageType").Select(e => e.Attribute("name")?.Value).ToList();
        CollectionAssert.AreEquivalent(new[] { "Dependency", "MSBuildSdk" }, types, metadata.ToString());
        Assert.IsFalse(metadata.Descendants().Any(e => e.Name.LocalName == "dependency"), metadata.ToString());
    }

    /// <summary>
    /// PackageReference: restore from the feed, build the library and the reports (verified under QEMU); a second build
    /// runs none of the TinyModel work; `dotnet clean` removes every output.
    /// </summary>
    [TestMethod]
    public void PackageReference_BuildsLibraryAndReport_ThenIsUpToDate_AndCleans()
    {
        var feed = LocalFeed.Shared;
        var dir = feed.NewMnistProject("pkgref");
        // the form, <PackageReference Include="MCUNetV2.Build" />, with the version from central package management
        File.WriteAllText(Path.Combine(dir, "Directory.Packages.props"), $"""
            <Project>
              <PropertyGroup>
                <ManagePackageVersionsCentrally>true</ManagePackageVersionsCentrally>
              </PropertyGroup>
              <ItemGroup>
                <PackageVersion Include="MCUNetV2.Build" Version="{feed.Version}" />
              </ItemGroup>
            </Project>
            """);
        var project = feed.WriteProject(dir, "app.csproj", "Microsoft.NET.Sdk", """<PackageReference Include="MCUNetV2.Build" />""");

        var first = DotnetBuild.Run(feed.Settings, dir, "build", project, "-v:n");
        Assert.AreEqual(0, first.ExitCode, first.ToString());
        var packageFolder = Path.Combine(feed.Settings.Environment!["NUGET_PACKAGES"], "mcunetv2.build", feed.Version.ToLowerInvariant());
        Assert.IsTrue(Directory.Exists(packageFolder), "restored into the isolated cache from the feed\n" + first);
        var outputs = AssertModelBuilt(dir, first);
        // (the SDK test may have restored it first: the cache records where it came from)
        StringAssert.Contains(File.ReadAllText(Path.Combine(packageFolder, ".nupkg.metadata")), Path.GetDirectoryName(feed.Package)!, first.ToString());

        var second = DotnetBuild.Run(feed.Settings, dir, "build", project, "-v:n");
        Assert.AreEqual(0, second.ExitCode, second.ToString());
        AssertNoTinyModelWork(second);

        var clean = DotnetBuild.Run(feed.Settings, dir, "clean", project, "-v:n");
        Assert.AreEqual(0, clean.ExitCode, clean.ToString());
        Assert.IsFalse(outputs.Any(File.Exists), clean.ToString());
        Assert.IsFalse(Directory.Exists(Path.GetDirectoryName(outputs[0])), clean.ToString());
        Assert.IsFalse(File.Exists(Path.Combine(dir, "obj", "Debug", "net10.0", "tinymodels", "mnist.inputs.cache")), clean.ToString());
    }

    /// <summary>
    /// The package as a project SDK, resolved from the feed: alone (&lt;Project Sdk="MCUNetV2.Build/x.y.z"&gt;, it brings
    /// Microsoft.NET.Sdk) and next to Microsoft.NET.Sdk (&lt;Sdk Name="MCUNetV2.Build" Version="x.y.z" /&gt;).
    /// </summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void ProjectSdk_BuildsLibraryAndReport(bool besideNetSdk)
    {
        var feed = LocalFeed.Shared;
        var dir = feed.NewMnistProject(besideNetSdk ? "sdk-beside" : "sdk");
        var project = besideNetSdk
            ? feed.WriteProject(dir, "firmware-model.csproj", "Microsoft.NET.Sdk", "</ItemGroup>\n" + $"""  <Sdk Name="MCUNetV2.Build" Version="{feed.Version}" />""" + "\n  <ItemGroup>")
            : feed.WriteProject(dir, "firmware-model.csproj", $"MCUNetV2.Build/{feed.Version}");

        var r = DotnetBuild.Run(feed.Settings, dir, "build", project, "-v:n");
        Assert.AreEqual(0, r.ExitCode, r.ToString());
        AssertModelBuilt(dir, r);
        Assert.IsTrue(Directory.Exists(Path.Combine(feed.Settings.Environment!["NUGET_PACKAGES"], "mcunetv2.build", feed.Version.ToLowerInvariant())), r.ToString());
        Assert.IsFalse(r.Output.Contains("MSB4011", StringComparison.Ordinal), "nothing imported twice\n" + r);
    }

    internal static string[] AssertModelBuilt(string dir, DotnetBuild.Result r)
    {
        var modelDir = Path.Combine(dir, "bin", "Debug", "net10.0", "tinymodels", "mnist");
        var outputs = new[] { "libmnist.a", "mnist.h", "mnist.memory.json", "mnist.memory.html" }.Select(f => Path.Combine(modelDir, f)).ToArray();
        foreach (var output in outputs)
            Assert.IsTrue(File.Exists(output) && new FileInfo(output).Length > 0, $"missing {output}\n{r}");
        StringAssert.Contains(r.Output, "2 image(s) under QEMU Cortex-M7 byte-identical", r.ToString());
        StringAssert.Contains(r.Output, $"mnist -> {outputs[0]}", r.ToString());
        Assert.IsFalse(r.Output.Contains("warning MCU", StringComparison.Ordinal), r.ToString());
        return outputs;
    }

    /// <summary>From a `-v:n` log: the compile target was skipped as up to date and the task did not run.</summary>
    internal static void AssertNoTinyModelWork(DotnetBuild.Result r)
    {
        StringAssert.Contains(r.Output, "Skipping target \"_MCUNetV2CompileTinyModel\" because all output files are up-to-date", r.ToString());
        Assert.IsFalse(r.Output.Contains(": compiling ", StringComparison.Ordinal), r.ToString());
        Assert.IsFalse(r.Output.Contains("CompileTinyModel task", StringComparison.Ordinal) && r.Output.Contains("Task \"CompileTinyModel\"", StringComparison.Ordinal), r.ToString());
    }
}
