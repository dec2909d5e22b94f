using MCUNetV2.Build.Tasks;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>A project folder with a model, its project file, and a <see cref="CompileTinyModel"/> task for one item of it.</summary>
internal sealed record TaskSetup(CompileTinyModel Task, FakeBuildEngine Engine, string Project, string Dir)
{
    public string Out => Path.Combine(Dir, "out");

    /// <param name="itemLines">The lines of the project's ItemGroup (the item under test among them, for positions in errors).</param>
    /// <param name="metadata">The metadata of the task's item, as MSBuild would pass them.</param>
    public static TaskSetup Create(string tempName, string model, string modelFile, IEnumerable<string> itemLines,
        IEnumerable<(string Name, string Value)> metadata, IReadOnlyList<string>? calibrationFiles = null)
    {
        var dir = Repo.NewTempDir(tempName);
        var project = Path.Combine(dir, "app.csproj");
        File.WriteAllText(project,
            "<Project Sdk=\"Microsoft.NET.Sdk\">\n" +
            "  <ItemGroup>\n" +
            string.Concat(itemLines.Select(l => $"    {l}\n")) +
            "  </ItemGroup>\n" +
            "</Project>\n");
        File.Copy(model, Path.Combine(dir, modelFile));
        var item = new TaskItem(modelFile);
        foreach (var (name, value) in metadata)
            item.SetMetadata(name, value);
        var engine = new FakeBuildEngine { ProjectFile = project };
        var task = new CompileTinyModel
        {
            BuildEngine = engine,
            Model = item,
            ProjectFile = project,
            OutputDirectory = Path.Combine(dir, "out"),
        };
        if (calibrationFiles != null)
        {
            task.IntermediateDirectory = Path.Combine(dir, "obj", Path.GetFileNameWithoutExtension(modelFile));
            task.CalibrationFiles = calibrationFiles.Select(f => (ITaskItem)new TaskItem(f)).ToArray();
        }
        return new TaskSetup(task, engine, project, dir);
    }

    /// <summary>The first two person images of the sample, in a stable order.</summary>
    public static IReadOnlyList<string> TwoImages() =>
        Directory.GetFiles(Repo.PersonImages, "*.png").OrderBy(f => f, StringComparer.Ordinal).Take(2).ToList();
}
