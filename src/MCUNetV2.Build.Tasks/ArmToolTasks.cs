using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Toolchain;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace MCUNetV2.Build.Tasks;

/// <summary>
/// Runs an arm-none-eabi tool (gcc or ar) as an MSBuild ToolTask. gcc's "file:line:col: error: message" lines become
/// MSBuild errors and warnings (code MCU5002) at that file and line; other output is logged as messages.
/// </summary>
public abstract class ArmToolTask : ToolTask
{
    /// <summary>Folder with the arm-none-eabi-* tools; empty = PATH.</summary>
    public string ToolchainDirectory { get; set; } = "";
    public string ToolPrefix { get; set; } = new ToolchainOptions().ToolPrefix;
    /// <summary>Base of the diagnostics' help links (see <see cref="HelpLinks"/>); empty = none.</summary>
    public string HelpLinkBase { get; set; } = "";

    protected abstract string Tool { get; }
    protected override string ToolName => ToolPrefix + Tool;

    internal ArmToolchain Toolchain(string cpuFlags = "", string optimizationFlags = "") => new(new ToolchainOptions
    {
        ToolchainDirectory = ToolchainDirectory,
        ToolPrefix = ToolPrefix,
        CpuFlags = cpuFlags,
        OptimizationFlags = optimizationFlags,
    });

    protected override string GenerateFullPathToTool() => Toolchain().FindTool(Tool) ?? ToolName;

    protected override bool ValidateParameters()
    {
        if (Toolchain().FindTool(Tool) != null) return base.ValidateParameters();
        Log.LogError(null, ErrorCodes.ToolchainMissing, null, HelpLinks.For(HelpLinkBase, ErrorCodes.ToolchainMissing), null, 0, 0, 0, 0,
            $"{ToolName} not found{(string.IsNullOrEmpty(ToolchainDirectory) ? " on PATH" : $" in '{ToolchainDirectory}'")}. " +
            "Install it with `sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi` (or run eng/install-prerequisites.sh), " +
            "or set the MCUNetV2ToolchainDirectory property.");
        return false;
    }

    protected static string Join(IEnumerable<string> args) =>
        string.Join(" ", args.Select(a => a.Length > 0 && !a.Any(c => char.IsWhiteSpace(c) || c == '"') ? a : "\"" + a.Replace("\"", "\\\"") + "\""));

    protected override void LogEventsFromTextOutput(string singleLine, MessageImportance messageImportance)
    {
        var parsed = ArmToolchain.ParseDiagnostics(singleLine);
        if (parsed.Count == 0) { base.LogEventsFromTextOutput(singleLine, messageImportance); return; }
        foreach (var d in parsed)
        {
            switch (d.Severity)
            {
                case DiagnosticSeverity.Error:
                    Log.LogError(null, d.Code, null, HelpLinks.For(HelpLinkBase, d.Code), d.File, d.Line, d.Column, 0, 0, d.Message); break;
                case DiagnosticSeverity.Warning:
                    Log.LogWarning(null, d.Code, null, HelpLinks.For(HelpLinkBase, d.Code), d.File, d.Line, d.Column, 0, 0, d.Message); break;
                default:
                    Log.LogMessage(MessageImportance.Normal, singleLine); break;
            }
        }
    }
}

/// <summary>Compiles one C file to an object with arm-none-eabi-gcc for the configured CPU.</summary>
public sealed class ArmGcc : ArmToolTask
{
    [Required] public string Source { get; set; } = "";
    [Required] public string ObjectFile { get; set; } = "";
    public string[] IncludeDirectories { get; set; } = Array.Empty<string>();
    public string CpuFlags { get; set; } = new ToolchainOptions().CpuFlags;
    public string OptimizationFlags { get; set; } = new ToolchainOptions().OptimizationFlags;

    protected override string Tool => "gcc";

    protected override string GenerateCommandLineCommands() =>
        Join(Toolchain(CpuFlags, OptimizationFlags).CompileArguments(Source, ObjectFile, IncludeDirectories));

    public override bool Execute()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(ObjectFile))!);
        return base.Execute();
    }
}

/// <summary>Creates a static library with arm-none-eabi-ar (deterministic, indexed).</summary>
public sealed class ArmAr : ArmToolTask
{
    [Required] public string Library { get; set; } = "";
    [Required] public string[] Objects { get; set; } = Array.Empty<string>();

    protected override string Tool => "ar";

    protected override string GenerateCommandLineCommands() =>
        Join(new[] { "qcsD", Path.GetFullPath(Library) }.Concat(Objects.Select(Path.GetFullPath)));
}

/// <summary>
/// Gives the compiler core a library builder that runs <see cref="ArmGcc"/> and <see cref="ArmAr"/> inside the
/// calling task, so that compiler output is logged by MSBuild as it arrives.
/// </summary>
internal sealed class ToolTaskLibraryBuilder : INativeLibraryBuilder
{
    private readonly ITask _parent;
    private readonly ToolchainOptions _options;
    private readonly string _helpLinkBase;

    public ToolTaskLibraryBuilder(ITask parent, ToolchainOptions options, string helpLinkBase = "")
    {
        _parent = parent;
        _options = options;
        _helpLinkBase = helpLinkBase;
    }

    /// <summary>A tool run failed and logged its own errors.</summary>
    public bool LoggedErrors { get; private set; }

    private T Setup<T>(T task) where T : ArmToolTask
    {
        task.BuildEngine = _parent.BuildEngine;
        task.HostObject = _parent.HostObject;
        task.ToolchainDirectory = _options.ToolchainDirectory;
        task.ToolPrefix = _options.ToolPrefix;
        task.HelpLinkBase = _helpLinkBase;
        return task;
    }

    public IReadOnlyList<CompilerDiagnostic> CompileObject(string cFile, string objFile, IEnumerable<string> includeDirs)
    {
        var gcc = Setup(new ArmGcc
        {
            Source = cFile,
            ObjectFile = objFile,
            IncludeDirectories = includeDirs.ToArray(),
            CpuFlags = _options.CpuFlags,
            OptimizationFlags = _options.OptimizationFlags,
        });
        if (!gcc.Execute())
            throw Logged() ?? new CompilerException(ErrorCodes.CompileFailed, $"arm-none-eabi-gcc failed on '{Path.GetFileName(cFile)}' (see the errors above)", cFile)
                { AlreadyReported = true };
        return Array.Empty<CompilerDiagnostic>(); // warnings were logged by the ToolTask
    }

    private Exception? Logged() { LoggedErrors = true; return null; }

    public void Archive(IEnumerable<string> objects, string libPath)
    {
        var lib = Path.GetFullPath(libPath);
        var temp = Path.Combine(Path.GetDirectoryName(lib)!, $".{Path.GetFileName(lib)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var ar = Setup(new ArmAr { Library = temp, Objects = objects.ToArray() });
            if (!ar.Execute() || !File.Exists(temp))
                throw Logged() ?? new CompilerException(ErrorCodes.ArchiveFailed, $"arm-none-eabi-ar failed creating '{Path.GetFileName(lib)}' (see above)", lib)
                    { AlreadyReported = true };
            File.Move(temp, lib, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
