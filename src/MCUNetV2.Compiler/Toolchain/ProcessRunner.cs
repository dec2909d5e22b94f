using System.Diagnostics;
using System.Text;

namespace MCUNetV2.Compiler.Toolchain;

/// <summary>What one external process did.</summary>
public sealed record ProcessResult(
    string FileName,
    IReadOnlyList<string> Arguments,
    int ExitCode,
    string StandardOutput,
    string StandardError,
    bool TimedOut,
    TimeSpan Elapsed)
{
    public bool Succeeded => !TimedOut && ExitCode == 0;

    /// <summary>The command line, quoted for display (not for re-parsing by a shell).</summary>
    public string CommandLine => ProcessRunner.FormatCommandLine(FileName, Arguments);

    /// <summary>The last <paramref name="maxChars"/> characters of stdout followed by stderr, for error messages.</summary>
    public string OutputTail(int maxChars = 2000)
    {
        var all = (StandardOutput.TrimEnd() + "\n" + StandardError.TrimEnd()).Trim();
        return all.Length <= maxChars ? all : "..." + all[^maxChars..];
    }
}

/// <summary>Runs external tools with captured output and a timeout, and finds executables.</summary>
public static class ProcessRunner
{
    /// <summary>
    /// Runs <paramref name="fileName"/> with the arguments passed verbatim (no shell), capturing stdout and stderr.
    /// On timeout the whole process tree is killed and <see cref="ProcessResult.TimedOut"/> is set.
    /// Throws <see cref="System.ComponentModel.Win32Exception"/> when the executable cannot be started.
    /// </summary>
    public static ProcessResult Run(string fileName, IEnumerable<string> arguments, string? workingDirectory = null,
        TimeSpan? timeout = null)
    {
        var args = arguments.ToList();
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            CreateNoWindow = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (!string.IsNullOrEmpty(workingDirectory)) psi.WorkingDirectory = workingDirectory;
        // Tools print plain ASCII messages that ParseDiagnostics can read; no localisation, no colour.
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["GCC_COLORS"] = "";

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };

        var watch = Stopwatch.StartNew();
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        bool timedOut = false;
        var limit = timeout ?? Timeout.InfiniteTimeSpan;
        if (!process.WaitForExit(limit == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Min(int.MaxValue, Math.Max(0, limit.TotalMilliseconds))))
        {
            timedOut = true;
            try { process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { /* exited meanwhile */ }
        }
        process.WaitForExit(); // drains the asynchronous readers
        watch.Stop();

        string o, e;
        lock (stdout) o = stdout.ToString();
        lock (stderr) e = stderr.ToString();
        return new ProcessResult(fileName, args, timedOut ? -1 : process.ExitCode, o, e, timedOut, watch.Elapsed);
    }

    /// <summary>
    /// Resolves a tool: a name containing a directory separator is taken as a path; a bare name is searched on PATH.
    /// On Windows ".exe" is tried when the name has no extension. Returns null when not found.
    /// </summary>
    public static string? FindExecutable(string nameOrPath)
    {
        if (string.IsNullOrWhiteSpace(nameOrPath)) return null;
        if (nameOrPath.Contains(Path.DirectorySeparatorChar) || nameOrPath.Contains(Path.AltDirectorySeparatorChar))
            return Candidates(nameOrPath).FirstOrDefault(IsExecutableFile);
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string full;
            try { full = Path.Combine(dir.Trim('"'), nameOrPath); }
            catch (ArgumentException) { continue; }
            var hit = Candidates(full).FirstOrDefault(IsExecutableFile);
            if (hit != null) return Path.GetFullPath(hit);
        }
        return null;
    }

    private static IEnumerable<string> Candidates(string path)
    {
        yield return path;
        if (OperatingSystem.IsWindows() && !Path.HasExtension(path)) yield return path + ".exe";
    }

    private static bool IsExecutableFile(string path)
    {
        if (!File.Exists(path)) return false;
        if (OperatingSystem.IsWindows()) return true;
        try
        {
            const UnixFileMode anyExec = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
            return (File.GetUnixFileMode(path) & anyExec) != 0;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Splits a flags string the way a POSIX shell splits words: whitespace separates, '...' is literal,
    /// "..." groups with \" and \\ escapes; outside quotes a backslash escapes a following quote, backslash or
    /// whitespace and is literal otherwise (so Windows paths survive).
    /// So <c>-DMODEL_HEADER="\"vww.h\""</c> becomes the single argument <c>-DMODEL_HEADER="vww.h"</c>.
    /// </summary>
    public static IReadOnlyList<string> SplitFlags(string? flags)
    {
        var result = new List<string>();
        if (string.IsNullOrWhiteSpace(flags)) return result;
        var current = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < flags.Length; i++)
        {
            char c = flags[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { result.Add(current.ToString()); current.Clear(); inWord = false; }
                continue;
            }
            inWord = true;
            if (c == '\'')
            {
                int end = flags.IndexOf('\'', i + 1);
                if (end < 0) throw new FormatException($"Unterminated ' in flags: {flags}");
                current.Append(flags, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                i++;
                for (; i < flags.Length && flags[i] != '"'; i++)
                {
                    if (flags[i] == '\\' && i + 1 < flags.Length && (flags[i + 1] == '"' || flags[i + 1] == '\\'))
                        i++;
                    current.Append(flags[i]);
                }
                if (i >= flags.Length) throw new FormatException($"Unterminated \" in flags: {flags}");
            }
            else if (c == '\\' && i + 1 < flags.Length && (flags[i + 1] is '"' or '\'' or '\\' || char.IsWhiteSpace(flags[i + 1])))
            {
                current.Append(flags[++i]);
            }
            else
            {
                current.Append(c);
            }
        }
        if (inWord) result.Add(current.ToString());
        return result;
    }

    public static string FormatCommandLine(string fileName, IEnumerable<string> arguments) =>
        string.Join(" ", new[] { fileName }.Concat(arguments).Select(Quote));

    private static string Quote(string s) =>
        s.Length > 0 && s.All(ch => !char.IsWhiteSpace(ch) && ch != '"' && ch != '\'' && ch != '\\')
            ? s
            : "'" + s.Replace("'", "'\\''") + "'";
}
