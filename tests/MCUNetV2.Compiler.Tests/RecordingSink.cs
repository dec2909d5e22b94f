using MCUNetV2.Compiler.Diagnostics;

namespace MCUNetV2.Compiler.Tests;

/// <summary>Collects the diagnostics and information messages of a pipeline run.</summary>
internal sealed class RecordingSink : IDiagnosticSink
{
    public readonly List<CompilerDiagnostic> Diagnostics = new();
    public readonly List<string> Messages = new();
    public void Report(CompilerDiagnostic d) => Diagnostics.Add(d);
    public void Info(string message) { Messages.Add(message); Console.WriteLine(message); }
}
