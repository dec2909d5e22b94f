using System.Collections.Concurrent;

namespace MCUNetV2.Compiler.Tests;

/// <summary>Temporary working folders of the tests: one per name, made on first use, all removed when the test run ends.</summary>
[TestClass]
public static class TestWork
{
    private static readonly ConcurrentDictionary<string, string> Folders = new();

    /// <summary>The folder for <paramref name="name"/> (for example "mcunet-relayout-").</summary>
    public static string Folder(string name) => Folders.GetOrAdd(name, n => Directory.CreateTempSubdirectory(n).FullName);

    [AssemblyCleanup]
    public static void RemoveAll()
    {
        foreach (var dir in Folders.Values)
            try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
