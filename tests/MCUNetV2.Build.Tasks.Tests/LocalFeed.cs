using System.Xml.Linq;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>
/// The MCUNetV2.Build package, packed once per test run (`dotnet pack --no-build` of the task project as built for the
/// tests) with a unique version into a temporary feed, and a folder whose nuget.config sees only that feed and the
/// machine's own sources. Builds there use an isolated package cache (NUGET_PACKAGES), so the package is really
/// restored from the feed.
/// </summary>
internal sealed class LocalFeed
{
    private static readonly Lazy<LocalFeed> Instance = new(Create, LazyThreadSafetyMode.ExecutionAndPublication);

    public static LocalFeed Shared => Instance.Value;

    public required string Version { get; init; }
    public required string Package { get; init; }
    /// <summary>Projects go in sub-folders of this one (it holds the nuget.config).</summary>
    public required string ProjectsRoot { get; init; }
    public required DotnetBuild.Settings Settings { get; init; }
    public required TimeSpan PackTime { get; init; }

    private static LocalFeed Create()
    {
        var root = Repo.NewTempDir("e2e");
        var feed = Directory.CreateDirectory(Path.Combine(root, "feed")).FullName;
        var packages = Directory.CreateDirectory(Path.Combine(root, "nuget-packages")).FullName;
        var projects = Directory.CreateDirectory(Path.Combine(root, "projects")).FullName;
        var version = $"1.0.0-e2e.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

        var started = DateTime.UtcNow;
        var pack = DotnetBuild.Run(Repo.Root, "pack", Path.Combine(Repo.Root, "src", "MCUNetV2.Build.Tasks", "MCUNetV2.Build.Tasks.csproj"),
            "--no-build", "-p:BuildProjectReferences=false", "-c", Repo.Configuration, "-o", feed, $"-p:Version={version}");
        var packTime = DateTime.UtcNow - started;
        var package = Path.Combine(feed, $"MCUNetV2.Build.{version}.nupkg");
        if (pack.ExitCode != 0 || !File.Exists(package))
            throw new InvalidOperationException($"dotnet pack failed\n{pack}");

        var sources = new XElement("packageSources", new XElement("clear"), new XElement("add", new XAttribute("key", "e2e-feed"), new XAttribute("value", feed)));
        foreach (var (key, value) in MachineSources())
            sources.Add(new XElement("add", new XAttribute("key", key), new XAttribute("value", value)));
        new XDocument(new XElement("configuration", sources)).Save(Path.Combine(projects, "nuget.config"));

        var environment = new Dictionary<string, string>
        {
            ["NUGET_PACKAGES"] = packages,
            ["NUGET_HTTP_CACHE_PATH"] = Path.Combine(root, "nuget-http-cache"),
        };
        return new LocalFeed
        {
            Version = version,
            Package = package,
            ProjectsRoot = projects,
            Settings = new DotnetBuild.Settings(environment),
            PackTime = packTime,
        };
    }

    /// <summary>The package sources of the user's NuGet.Config (so that other packages still restore); nuget.org if none.</summary>
    private static IEnumerable<(string Key, string Value)> MachineSources()
    {
        var config = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "NuGet", "NuGet.Config");
        var found = new List<(string, string)>();
        try
        {
            if (File.Exists(config))
            {
                foreach (var add in XDocument.Load(config).Descendants("packageSources").Elements("add"))
                {
                    if (add.Attribute("key")?.Value is { } key && add.Attribute("value")?.Value is { } value)
                        found.Add((key, value));
                }
            }
        }
        catch (System.Xml.XmlException)
        {
        }
        return found.Count > 0 ? found : new[] { ("nuget.org", "https://api.nuget.org/v3/index.json") };
    }

    /// <summary>A project folder under <see cref="ProjectsRoot"/> with mnist-8 and the MNIST digits (inputs an hour old).</summary>
    public string NewMnistProject(string name)
    {
        var dir = Directory.CreateDirectory(Path.Combine(ProjectsRoot, $"{name}-{Guid.NewGuid():N}")).FullName;
        File.Copy(Repo.Mnist8Model, Path.Combine(dir, "mnist.onnx"));
        Directory.CreateDirectory(Path.Combine(dir, "digits"));
        File.Copy(Repo.MnistDigits, Path.Combine(dir, "digits", Path.GetFileName(Repo.MnistDigits)));
        foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddHours(-1));
        return dir;
    }

    /// <summary>A net10.0 project with the SDK <paramref name="sdk"/>, <see cref="MnistItem"/> and <paramref name="items"/>.</summary>
    public string WriteProject(string dir, string fileName, string sdk, string items = "")
    {
        var project = Path.Combine(dir, fileName);
        File.WriteAllText(project, $"""
            <Project Sdk="{sdk}">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
              </PropertyGroup>
              <ItemGroup>
                {items}
                {MnistItem}
              </ItemGroup>
            </Project>
            """);
        return project;
    }

    /// <summary>mnist-8 calibrated on 10 digits, verified under QEMU on 2.</summary>
    public const string MnistItem =
        """<TinyModel Include="mnist.onnx" Calibration="digits/*.gz" CalibrationLimit="10" ChannelOrder="Gray" Mean="0" Scale="1" VerifyImages="2" />""";
}
