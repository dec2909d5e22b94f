namespace MCUNetV2.Compiler.Diagnostics;

public enum DiagnosticSeverity { Message, Warning, Error }

/// <summary>A diagnostic with a stable code (MCU + four digits), the file it is about and, where known, a line.</summary>
public sealed record CompilerDiagnostic(
    DiagnosticSeverity Severity,
    string Code,
    string Message,
    string? File = null,
    int Line = 0,
    int Column = 0)
{
    public override string ToString() =>
        $"{File}{(Line > 0 ? $"({Line}{(Column > 0 ? $",{Column}" : "")})" : "")}: {Severity.ToString().ToLowerInvariant()} {Code}: {Message}";
}

/// <summary>Thrown by any stage for input the compiler refuses. Carries a coded diagnostic; never a bug.</summary>
public sealed class CompilerException : Exception
{
    public CompilerDiagnostic Diagnostic { get; }

    /// <summary>The failure was already logged in detail (e.g. by an MSBuild ToolTask); do not report it again.</summary>
    public bool AlreadyReported { get; init; }

    public CompilerException(string code, string message, string? file = null, int line = 0, int column = 0, Exception? inner = null)
        : base(message, inner)
    {
        Diagnostic = new CompilerDiagnostic(DiagnosticSeverity.Error, code, message, file, line, column);
    }
}

/// <summary>Receives diagnostics and progress messages; the MSBuild task forwards them to the build log.</summary>
public interface IDiagnosticSink
{
    void Report(CompilerDiagnostic diagnostic);
    void Info(string message);
}

/// <summary>The documented diagnostic codes. Keep README.md's table in step with this list.</summary>
public static class ErrorCodes
{
    // 1xxx: model import
    public const string ModelNotFound = "MCU1001";
    public const string ModelCorrupt = "MCU1002";
    public const string UnsupportedOperator = "MCU1003";
    public const string DynamicShape = "MCU1004";
    public const string MissingInitializer = "MCU1005";
    public const string UnsupportedModel = "MCU1006";
    // 2xxx: quantization / calibration
    public const string CalibrationMissing = "MCU2001";
    public const string CalibrationUnreadable = "MCU2002";
    /// <summary>Warning: a pre-quantized model's parameters could not be kept exactly (e.g. asymmetric weights re-quantized).</summary>
    public const string QuantizationAdjusted = "MCU2003";
    /// <summary>A calibration tensor (.npy, .pb) or IDX file whose shape does not fit the model input.</summary>
    public const string CalibrationShapeMismatch = "MCU2004";
    /// <summary>Warning: a layer's SQNR (int8 vs float on the calibration samples) is under MinLayerSqnr.</summary>
    public const string LowLayerSqnr = "MCU2005";
    // 3xxx: planning
    public const string BadPatchGrid = "MCU3001";
    public const string PatchingDoesNotHelp = "MCU3002";
    /// <summary>The planned arena (peak SRAM of the chosen schedule) exceeds the MaxSramBytes budget.</summary>
    public const string SramBudgetExceeded = "MCU3003";
    // 4xxx: item metadata / options
    public const string BadMetadata = "MCU4001";
    // 5xxx: toolchain
    public const string ToolchainMissing = "MCU5001";
    public const string CompileFailed = "MCU5002";
    public const string ArchiveFailed = "MCU5003";
    public const string QemuMissing = "MCU5004";
    public const string QemuFailed = "MCU5005";
    public const string VerificationMismatch = "MCU5006";
    /// <summary>The compiled library (weights + code) exceeds the MaxFlashBytes budget.</summary>
    public const string FlashBudgetExceeded = "MCU5007";
    // 6xxx: export
    /// <summary>A layer of the int8 model cannot be written as QDQ ONNX.</summary>
    public const string ExportUnsupported = "MCU6001";
    // 9xxx: internal
    public const string InternalError = "MCU9001";
}
