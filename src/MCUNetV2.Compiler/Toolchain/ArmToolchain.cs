using System.Text;
using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Compiler.Toolchain;

/// <summary>
/// Carried as <see cref="Exception.InnerException"/> of a <see cref="CompilerException"/> thrown for a failing tool run:
/// every diagnostic parsed from the tool's output (errors, warnings, notes) and the raw process result.
/// </summary>
public sealed class ToolOutputException : Exception
{
    public IReadOnlyList<CompilerDiagnostic> Diagnostics { get; }
    public ProcessResult Result { get; }

    public ToolOutputException(IReadOnlyList<CompilerDiagnostic> diagnostics, ProcessResult result)
        : base($"{Path.GetFileName(result.FileName)} exited with code {result.ExitCode}:\n{result.OutputTail()}")
    {
        Diagnostics = diagnostics;
        Result = result;
    }
}

/// <summary>
/// The GNU Arm Embedded toolchain (arm-none-eabi-gcc, -ar): compiles C to objects, archives them, links the
/// verification harness. Tools are resolved from <see cref="ToolchainOptions.ToolchainDirectory"/>, or PATH when empty.
/// </summary>
public sealed class ArmToolchain : INativeLibraryBuilder
{
    IReadOnlyList<CompilerDiagnostic> INativeLibraryBuilder.CompileObject(string cFile, string objFile, IEnumerable<string> includeDirs) =>
        CompileObject(cFile, objFile, includeDirs, "");

    /// <summary>Flags every C compile gets after the CPU and optimisation flags.</summary>
    public static readonly IReadOnlyList<string> CommonCompileFlags =
        new[] { "-std=c99", "-Wall", "-ffunction-sections", "-fdata-sections" };

    private string? _gcc;
    private string? _ar;

    public ArmToolchain(ToolchainOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
    }

    public ToolchainOptions Options { get; }

    /// <summary>Limit for one compiler / archiver / linker run.</summary>
    public TimeSpan ToolTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Full path of the C compiler (locating it on first use).</summary>
    public string GccPath { get { Locate(); return _gcc!; } }

    /// <summary>Full path of the archiver (locating it on first use).</summary>
    public string ArPath { get { Locate(); return _ar!; } }

    /// <summary>
    /// Resolves gcc and ar. Throws <see cref="CompilerException"/> with <see cref="ErrorCodes.ToolchainMissing"/>
    /// when either is missing.
    /// </summary>
    public void Locate()
    {
        if (_gcc != null && _ar != null) return;
        var gcc = FindTool("gcc") ?? throw Missing("gcc");
        var ar = FindTool("ar") ?? throw Missing("ar");
        _gcc = gcc;
        _ar = ar;
    }

    /// <summary>
    /// Resolves <c>&lt;ToolchainDirectory&gt;/&lt;ToolPrefix&gt;&lt;tool&gt;</c> (e.g. "size", "objdump"), or the
    /// prefixed name on PATH when no directory is set. Returns null when absent.
    /// </summary>
    public string? FindTool(string tool)
    {
        var name = Options.ToolPrefix + tool;
        return string.IsNullOrWhiteSpace(Options.ToolchainDirectory)
            ? ProcessRunner.FindExecutable(name)
            : ProcessRunner.FindExecutable(Path.GetFullPath(Path.Combine(Options.ToolchainDirectory, name)));
    }

    private CompilerException Missing(string tool)
    {
        var name = Options.ToolPrefix + tool;
        var where = string.IsNullOrWhiteSpace(Options.ToolchainDirectory)
            ? "on PATH"
            : $"in '{Options.ToolchainDirectory}'";
        return new CompilerException(ErrorCodes.ToolchainMissing,
            $"{name} not found {where}; install with `sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi` " +
            "or set the MCUNetV2ToolchainDirectory property to the folder holding the arm-none-eabi-* tools");
    }

    /// <summary>
    /// Compiles one C file to an object with CpuFlags + OptimizationFlags + <see cref="CommonCompileFlags"/>,
    /// the include directories and <paramref name="extraFlags"/> (split like shell words).
    /// Returns the warnings/notes the compiler printed. On failure throws <see cref="CompilerException"/>
    /// (<see cref="ErrorCodes.CompileFailed"/>) describing the first error, with File/Line/Column; all diagnostics
    /// are on its <see cref="ToolOutputException"/> inner exception (see <see cref="DiagnosticsOf"/>).
    /// </summary>
    public IReadOnlyList<CompilerDiagnostic> CompileObject(string cFile, string objFile, IEnumerable<string> includeDirs,
        string extraFlags = "") =>
        CompileObject(cFile, objFile, includeDirs, ProcessRunner.SplitFlags(extraFlags));

    /// <summary>The gcc arguments that compile <paramref name="source"/> to <paramref name="obj"/> (shared with the MSBuild ToolTask).</summary>
    public IReadOnlyList<string> CompileArguments(string source, string obj, IEnumerable<string> includeDirs, IEnumerable<string>? extraArguments = null)
    {
        var args = new List<string>();
        args.AddRange(ProcessRunner.SplitFlags(Options.CpuFlags));
        args.AddRange(ProcessRunner.SplitFlags(Options.OptimizationFlags));
        args.AddRange(CommonCompileFlags);
        args.Add("-fdiagnostics-color=never");
        foreach (var dir in includeDirs ?? Enumerable.Empty<string>())
            if (!string.IsNullOrWhiteSpace(dir)) args.Add("-I" + Path.GetFullPath(dir));
        args.AddRange(extraArguments ?? Enumerable.Empty<string>());
        args.AddRange(new[] { "-c", Path.GetFullPath(source), "-o", Path.GetFullPath(obj) });
        return args;
    }

    /// <summary>As the string overload, with extra arguments passed verbatim (no splitting or quoting).</summary>
    public IReadOnlyList<CompilerDiagnostic> CompileObject(string cFile, string objFile, IEnumerable<string> includeDirs,
        IEnumerable<string> extraArguments)
    {
        Locate();
        var source = Path.GetFullPath(cFile);
        var obj = Path.GetFullPath(objFile);
        if (!File.Exists(source))
            throw new CompilerException(ErrorCodes.CompileFailed, $"C source '{source}' does not exist", source);
        EnsureParentDirectory(obj);

        var result = RunTool(GccPath, CompileArguments(source, obj, includeDirs, extraArguments));
        var diagnostics = ParseDiagnostics(result.StandardError, source);
        if (!result.Succeeded)
            throw Failure(ErrorCodes.CompileFailed, $"compiling '{Path.GetFileName(source)}'", source, diagnostics, result);
        return diagnostics;
    }

    /// <summary>
    /// Creates the static library <paramref name="libPath"/> from the objects (ar qcsD into a temporary file in the
    /// same folder, then renamed over the target, so an incomplete library never exists under its final name).
    /// Throws <see cref="CompilerException"/> with <see cref="ErrorCodes.ArchiveFailed"/> on failure.
    /// </summary>
    public void Archive(IEnumerable<string> objects, string libPath)
    {
        Locate();
        var objs = objects.Select(Path.GetFullPath).ToList();
        var lib = Path.GetFullPath(libPath);
        if (objs.Count == 0)
            throw new CompilerException(ErrorCodes.ArchiveFailed, $"no object files to archive into '{lib}'", lib);
        foreach (var o in objs)
            if (!File.Exists(o))
                throw new CompilerException(ErrorCodes.ArchiveFailed, $"object file '{o}' does not exist", o);
        EnsureParentDirectory(lib);

        var temp = Path.Combine(Path.GetDirectoryName(lib)!, $".{Path.GetFileName(lib)}.{Guid.NewGuid():N}.tmp");
        string? responseFile = null;
        try
        {
            // q (append without replacing same-named members) into a fresh file, c quiet create, s index, D deterministic.
            var args = new List<string> { "qcsD", temp };
            if (objs.Sum(o => o.Length + 3) > 16 * 1024)
            {
                responseFile = temp + ".rsp";
                File.WriteAllLines(responseFile, objs.Select(QuoteForResponseFile));
                args.Add("@" + responseFile);
            }
            else
            {
                args.AddRange(objs);
            }
            var result = RunTool(ArPath, args);
            if (!result.Succeeded || !File.Exists(temp))
                throw new CompilerException(ErrorCodes.ArchiveFailed,
                    $"{Path.GetFileName(ArPath)} failed creating '{Path.GetFileName(lib)}' " +
                    $"({(result.TimedOut ? "timed out" : $"exit code {result.ExitCode}")}): {result.OutputTail()}",
                    lib, inner: new ToolOutputException(ParseDiagnostics(result.StandardError, null), result));
            File.Move(temp, lib, overwrite: true);
        }
        finally
        {
            TryDelete(temp);
            if (responseFile != null) TryDelete(responseFile);
        }
    }

    /// <summary>
    /// Links an executable with gcc: CpuFlags + OptimizationFlags + <paramref name="extraFlags"/> (shell-split),
    /// <c>-T linkerScript</c> when given, <c>-Wl,-Map=mapFile</c> when given, then the inputs in order (objects and
    /// static libraries), then <c>-lm</c>. Returns the linker's warnings; throws <see cref="CompilerException"/>
    /// (<see cref="ErrorCodes.CompileFailed"/>) with the first error (e.g. an undefined reference or RAM overflow).
    /// </summary>
    public IReadOnlyList<CompilerDiagnostic> LinkExecutable(IEnumerable<string> inputs, string elfPath,
        string? linkerScript = null, string extraFlags = "", string? mapFile = null)
    {
        Locate();
        var elf = Path.GetFullPath(elfPath);
        EnsureParentDirectory(elf);
        var args = new List<string>();
        args.AddRange(ProcessRunner.SplitFlags(Options.CpuFlags));
        args.AddRange(ProcessRunner.SplitFlags(Options.OptimizationFlags));
        args.AddRange(ProcessRunner.SplitFlags(extraFlags));
        if (!string.IsNullOrEmpty(linkerScript)) args.AddRange(new[] { "-T", Path.GetFullPath(linkerScript) });
        if (!string.IsNullOrEmpty(mapFile)) args.Add("-Wl,-Map=" + Path.GetFullPath(mapFile));
        foreach (var input in inputs)
        {
            var full = Path.GetFullPath(input);
            if (!File.Exists(full))
                throw new CompilerException(ErrorCodes.CompileFailed, $"link input '{full}' does not exist", full);
            args.Add(full);
        }
        args.Add("-lm");
        args.AddRange(new[] { "-o", elf });

        var result = RunTool(GccPath, args);
        var diagnostics = ParseDiagnostics(result.StandardError, null);
        if (!result.Succeeded)
            throw Failure(ErrorCodes.CompileFailed, $"linking '{Path.GetFileName(elf)}'", elf, diagnostics, result);
        return diagnostics;
    }

    /// <summary>All diagnostics behind a toolchain <see cref="CompilerException"/> (or just its own diagnostic).</summary>
    public static IReadOnlyList<CompilerDiagnostic> DiagnosticsOf(CompilerException exception) =>
        exception.InnerException is ToolOutputException t && t.Diagnostics.Count > 0
            ? t.Diagnostics
            : new[] { exception.Diagnostic };

    private ProcessResult RunTool(string tool, IReadOnlyList<string> args)
    {
        try
        {
            return ProcessRunner.Run(tool, args, timeout: ToolTimeout);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CompilerException(ErrorCodes.ToolchainMissing,
                $"cannot run '{tool}': {e.Message}; install with `sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi` " +
                "or set the MCUNetV2ToolchainDirectory property", inner: e);
        }
    }

    private static CompilerException Failure(string code, string what, string file,
        IReadOnlyList<CompilerDiagnostic> diagnostics, ProcessResult result)
    {
        var inner = new ToolOutputException(diagnostics, result);
        if (result.TimedOut)
            return new CompilerException(code, $"{Path.GetFileName(result.FileName)} timed out {what}", file, inner: inner);
        var errors = diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        // Prefer an error that points into a file over generic ones such as "collect2: error: ld returned 1".
        var first = errors.FirstOrDefault(d => d.File != null && d.Line > 0)
                    ?? errors.FirstOrDefault(d => d.File != null)
                    ?? errors.FirstOrDefault();
        if (first == null)
            return new CompilerException(code,
                $"{Path.GetFileName(result.FileName)} failed {what} (exit code {result.ExitCode}): {result.OutputTail()}",
                file, inner: inner);
        var message = first.Message + Hint(result.StandardError);
        if (errors.Count > 1) message += $" (+{errors.Count - 1} more error(s))";
        return new CompilerException(code, message, first.File ?? file, first.Line, first.Column, inner);
    }

    private static string Hint(string stderr) =>
        Regex.IsMatch(stderr, @"\b(stdint|stdio|stdlib|string)\.h: No such file|rdimon\.specs|cannot find -lc\b|nano\.specs")
            ? " (newlib missing? install with `sudo apt-get install libnewlib-arm-none-eabi`)"
            : "";

    // path:line:col: severity: message   (col optional; "fatal error" counts as error)
    private static readonly Regex CompilerLine = new(
        @"^(?<file>(?:[A-Za-z]:[\\/])?[^:\n]+?):(?<line>\d+):(?:(?<col>\d+):)?\s*(?<sev>fatal error|error|warning|note):\s*(?<msg>.*)$",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    // object.o:(.text.f+0x12): undefined reference to `x'     /   file.c:12: undefined reference (with -g)
    private static readonly Regex LinkerReference = new(
        @"^(?<file>(?:[A-Za-z]:[\\/])?[^:\n]+?):(?:\((?<sec>[^)]*)\)|(?<line>\d+)):\s*(?<msg>(?:undefined reference|multiple definition).*)$",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    // tool: [fatal ]error|warning: message      (cc1, collect2, ld, arm-none-eabi-gcc, ...)
    private static readonly Regex ToolLine = new(
        @"^(?<tool>(?:[A-Za-z]:[\\/])?[^:\n]+?):\s*(?<sev>fatal error|error|warning):\s*(?<msg>.*)$",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    // .../ld: message   (region overflow, cannot find -lfoo, ...)
    private static readonly Regex LinkerPlain = new(
        @"^(?<tool>(?:[A-Za-z]:[\\/])?(?:[^:\n]*[\\/])?[\w.-]*\bld(?:\.exe)?):\s*(?<msg>.*)$",
        RegexOptions.Compiled | RegexOptions.CultureInvariant);

    /// <summary>
    /// Parses gcc/ld stderr into diagnostics (code <see cref="ErrorCodes.CompileFailed"/>): errors (including fatal
    /// errors, undefined references, region overflows), warnings, and notes (as <see cref="DiagnosticSeverity.Message"/>).
    /// Lines that are context (source excerpts, carets, "In function") are skipped.
    /// <paramref name="defaultFile"/> is used for tool-level errors without a file.
    /// </summary>
    public static IReadOnlyList<CompilerDiagnostic> ParseDiagnostics(string stderr, string? defaultFile = null)
    {
        var list = new List<CompilerDiagnostic>();
        foreach (var raw in (stderr ?? "").Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || char.IsWhiteSpace(line[0])) continue;

            var m = CompilerLine.Match(line);
            if (m.Success)
            {
                var col = m.Groups["col"].Success ? int.Parse(m.Groups["col"].Value) : 0;
                list.Add(new CompilerDiagnostic(Severity(m.Groups["sev"].Value), ErrorCodes.CompileFailed,
                    m.Groups["msg"].Value.Trim(), m.Groups["file"].Value, int.Parse(m.Groups["line"].Value), col));
                continue;
            }
            m = LinkerReference.Match(line);
            if (m.Success)
            {
                var ln = m.Groups["line"].Success ? int.Parse(m.Groups["line"].Value) : 0;
                list.Add(new CompilerDiagnostic(DiagnosticSeverity.Error, ErrorCodes.CompileFailed,
                    m.Groups["msg"].Value.Trim(), m.Groups["file"].Value, ln));
                continue;
            }
            m = ToolLine.Match(line);
            if (m.Success)
            {
                list.Add(new CompilerDiagnostic(Severity(m.Groups["sev"].Value), ErrorCodes.CompileFailed,
                    $"{Path.GetFileName(m.Groups["tool"].Value)}: {m.Groups["msg"].Value.Trim()}", defaultFile));
                continue;
            }
            m = LinkerPlain.Match(line);
            if (m.Success)
            {
                var msg = m.Groups["msg"].Value.Trim();
                if (msg.EndsWith(':')) continue; // "ld: x.o: in function `f':" is context for the next line
                var isWarning = msg.StartsWith("warning", StringComparison.OrdinalIgnoreCase);
                list.Add(new CompilerDiagnostic(isWarning ? DiagnosticSeverity.Warning : DiagnosticSeverity.Error,
                    ErrorCodes.CompileFailed, "ld: " + msg, defaultFile));
            }
        }
        return list;
    }

    private static DiagnosticSeverity Severity(string s) => s switch
    {
        "warning" => DiagnosticSeverity.Warning,
        "note" => DiagnosticSeverity.Message,
        _ => DiagnosticSeverity.Error,
    };

    private static string QuoteForResponseFile(string path)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in path)
        {
            if (c is '"' or '\\') sb.Append('\\');
            sb.Append(c);
        }
        return sb.Append('"').ToString();
    }

    private static void EnsureParentDirectory(string file)
    {
        var dir = Path.GetDirectoryName(file);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
    }

    private static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
