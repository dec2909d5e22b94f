using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Input;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Compiler.Tests;

/// <summary>Paths of the material committed under tests/data (copied from the project's shared folder with license notes).</summary>
internal static class TestData
{
    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    public static string VwwModel => Path.Combine(RepoRoot, "tests", "data", "models", "vww.onnx");

    /// <summary>The 15 labelled VWW images: (path, label), label 1 = person.</summary>
    public static IReadOnlyList<(string Path, int Label)> VwwImages { get; } =
        new[] { ("no_person", 0), ("person", 1) }
            .SelectMany(d => Directory.GetFiles(Path.Combine(RepoRoot, "tests", "data", "vww-images", d.Item1))
                .OrderBy(f => f, StringComparer.Ordinal).Select(f => (f, d.Item2)))
            .ToList();

    public static float[] VwwInput(string image, TensorShape shape) => ImageLoader.Load(image, new Preprocessing(), shape);

    public static int ArgMax(IReadOnlyList<float> v) => Enumerable.Range(0, v.Count).MaxBy(i => v[i]);
    public static int ArgMax(IReadOnlyList<sbyte> v) => Enumerable.Range(0, v.Count).MaxBy(i => v[i]);
}
