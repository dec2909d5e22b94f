namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>Paths in the repository (tests use the material committed under tests/data).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    public static string VwwModel => Path.Combine(Root, "tests", "data", "models", "vww.onnx");
    public static string PersonImages => Path.Combine(Root, "tests", "data", "vww-images", "person");
    public static string Mnist8Model => Path.Combine(Root, "tests", "data", "models", "mnist-8", "model.onnx");
    /// <summary>10,000 MNIST digits, IDX [10000,28,28] uint8, gzip-compressed.</summary>
    public static string MnistDigits => Path.Combine(Root, "tests", "data", "mnist", "digits-images-idx3-ubyte.gz");
    public static string BuildProps => Path.Combine(Root, "build", "MCUNetV2.Build.props");
    public static string BuildTargets => Path.Combine(Root, "build", "MCUNetV2.Build.targets");

#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif

    /// <summary>The task project's own output (with its deps.json), built in the same configuration as the tests.</summary>
    public static string TasksAssembly =>
        Path.Combine(Root, "src", "MCUNetV2.Build.Tasks", "bin", Configuration, "net10.0", "MCUNetV2.Build.Tasks.dll");

    /// <summary>This test run's folder under the system temp folder; removed when the run ends.</summary>
    public static string TempRoot { get; } =
        Path.Combine(Path.GetTempPath(), "mcunetv2-build-tests", $"{Environment.ProcessId}-{Guid.NewGuid():N}");

    /// <summary>A fresh folder under <see cref="TempRoot"/>.</summary>
    public static string NewTempDir(string name)
    {
        var dir = Path.Combine(TempRoot, $"{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
