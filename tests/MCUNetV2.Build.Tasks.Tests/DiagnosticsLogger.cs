using Microsoft.Build.Framework;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>
/// An MSBuild logger for the tests' child builds (<c>-logger:DiagnosticsLogger,&lt;this assembly&gt;;&lt;file&gt;</c>):
/// writes every error and warning as one tab-separated line, kind, code, help link, file, line, to the file.
/// </summary>
public sealed class DiagnosticsLogger : ILogger
{
    private StreamWriter? _writer;

    public LoggerVerbosity Verbosity { get; set; }
    public string? Parameters { get; set; }

    public void Initialize(IEventSource eventSource)
    {
        _writer = new StreamWriter(Parameters ?? throw new ArgumentException("the output file is the logger's parameter"));
        eventSource.ErrorRaised += (_, e) => Write("error", e.Code, e.HelpLink, e.File, e.LineNumber);
        eventSource.WarningRaised += (_, e) => Write("warning", e.Code, e.HelpLink, e.File, e.LineNumber);
    }

    private void Write(string kind, string? code, string? helpLink, string? file, int line)
    {
        lock (this)
            _writer!.WriteLine(string.Join('\t', kind, code ?? "", helpLink ?? "", file ?? "", line));
    }

    public void Shutdown() => _writer?.Dispose();

    /// <summary>The logger argument for a child build writing to <paramref name="file"/>.</summary>
    public static string Argument(string file) =>
        $"-logger:{typeof(DiagnosticsLogger).FullName},{typeof(DiagnosticsLogger).Assembly.Location};{file}";

    public sealed record Entry(string Kind, string Code, string HelpLink, string File, int Line);

    public static IReadOnlyList<Entry> Read(string file) =>
        File.ReadAllLines(file).Select(l => l.Split('\t')).Select(p => new Entry(p[0], p[1], p[2], p[3], int.Parse(p[4]))).ToList();
}
