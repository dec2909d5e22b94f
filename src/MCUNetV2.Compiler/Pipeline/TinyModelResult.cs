using MCUNetV2.Compiler.Diagnostics;

namespace MCUNetV2.Compiler.Pipeline;

/// <summary>What one TinyModel build produced. Paths are absolute.</summary>
public sealed class TinyModelResult
{
    public bool Succeeded { get; init; }
    public string? LibraryPath { get; init; }
    public string? HeaderPath { get; init; }
    public string? MemoryReportPath { get; init; }
    /// <summary>&lt;prefix&gt;.memory.html: the memory and quantization report as one standalone HTML page.</summary>
    public string? HtmlReportPath { get; init; }
    /// <summary>&lt;prefix&gt;.qdq.onnx when <see cref="TinyModelOptions.ExportQdq"/> asked for it, else null.</summary>
    public string? QdqModelPath { get; init; }
    public IReadOnlyList<string> GeneratedSources { get; init; } = Array.Empty<string>();
    public MemorySummary? Memory { get; init; }
    public IReadOnlyList<CompilerDiagnostic> Diagnostics { get; init; } = Array.Empty<CompilerDiagnostic>();
}

/// <summary>The figures the build log summarises.</summary>
public sealed record MemorySummary(
    long PerLayerPeakBytes,
    long PatchBasedPeakBytes,
    long ArenaBytes,
    long FlashBytes,
    long RamBytes,
    string Schedule,
    string? Verification = null,
    string? Quantization = null);
