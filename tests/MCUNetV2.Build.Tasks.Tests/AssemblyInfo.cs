// Unit tests are independent; the dotnet-build tests each use their own temporary folder.
[assembly: Parallelize(Workers = 0, Scope = ExecutionScope.MethodLevel)]

namespace MCUNetV2.Build.Tasks.Tests
{
    [TestClass]
    public static class TestRun
    {
        [AssemblyCleanup]
        public static void RemoveTempFolders()
        {
            try
            {
                if (Directory.Exists(Repo.TempRoot))
                    Directory.Delete(Repo.TempRoot, recursive: true);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }
}
