using System.Diagnostics;
using System.Text;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>Runs the dotnet CLI on a generated project, isolated from the MSBuild that runs the tests.</summary>
internal static class DotnetBuild
{
    public sealed record Result(int ExitCode, string Output)
    {
        public override string ToString() => $"exit code {ExitCode}\n{Output}";
    }

    /// <summary>A project outside the repository that imports build/MCUNetV2.Build.props|targets the way the package does.</summary>
    public static string WriteProject(string dir, string items, string properties = "")
    {
        var project = Path.Combine(dir, "app.csproj");
        File.WriteAllText(project, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <Import Project="{Repo.BuildProps}" />
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <EnableDefaultItems>false</EnableDefaultItems>
                <GenerateDocumentationFile>false</GenerateDocumentationFile>
                <MCUNetV2TasksAssembly>{Repo.TasksAssembly}</MCUNetV2TasksAssembly>
            {properties}
              </PropertyGroup>
              <ItemGroup>
            {items}
              </ItemGroup>
              <Import Project="{Repo.BuildTargets}" />
            </Project>
            """);
        return project;
    }

    /// <summary>Extra environment of a run, and a condition that, once true, kills the build (an interrupted build).</summary>
    public sealed record Settings(IReadOnlyDictionary<string, string>? Environment = null, Func<bool>? KillWhen = null);

    public static Result Run(string workingDirectory, params string[] args) => Run(new Settings(), workingDirectory, args);

    public static Result Run(Settings settings, string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo(DotnetExecutable())
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("-nologo");
        psi.ArgumentList.Add("-nodeReuse:false");
        psi.ArgumentList.Add("-consoleLoggerParameters:NoSummary;ForceNoAlign");

        // The test host inherits variables from the MSBuild that started it; a child build must not see them.
        foreach (var key in psi.Environment.Keys.ToList())
        {
            if (key.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) ||
                key.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) ||
                key.StartsWith("TESTINGPLATFORM", StringComparison.OrdinalIgnoreCase))
                psi.Environment.Remove(key);
        }
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        foreach (var (key, value) in settings.Environment ?? new Dictionary<string, string>())
            psi.Environment[key] = value;

        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (settings.KillWhen is { } killWhen)
        {
            var deadline = DateTime.UtcNow.AddMinutes(10);
            while (!process.HasExited && DateTime.UtcNow < deadline && !killWhen())
                Thread.Sleep(20);
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                lock (output)
                    return new Result(-1, output + "\n(killed)");
            }
        }
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet {string.Join(' ', args)} did not finish in 10 minutes\n{output}");
        }
        process.WaitForExit();
        lock (output)
            return new Result(process.ExitCode, output.ToString());
    }

    private static string DotnetExecutable()
    {
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
    }
}
