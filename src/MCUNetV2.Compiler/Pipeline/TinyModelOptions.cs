namespace MCUNetV2.Compiler.Pipeline;

/// <summary>Everything one TinyModel item asks for. The MSBuild task fills this from item metadata.</summary>
public sealed class TinyModelOptions
{
    /// <summary>Path of the .onnx file.</summary>
    public required string ModelPath { get; init; }
    /// <summary>Folder that receives the generated sources, library, header and reports.</summary>
    public required string OutputDirectory { get; init; }
    /// <summary>Where the generated C and objects are built (compiler messages point here). Default: &lt;OutputDirectory&gt;/.&lt;prefix&gt;.intermediate.</summary>
    public string? IntermediateDirectory { get; init; }
    /// <summary>C identifier prefix for the API (vww_invoke, VWW_ARENA_BYTES). Default: the model's file name.</summary>
    public required string Prefix { get; init; }
    /// <summary>Patch grid rows x cols; (1,1) means per-layer inference.</summary>
    public int PatchRows { get; init; } = 1;
    public int PatchCols { get; init; } = 1;
    /// <summary>Image files used to calibrate activation ranges (PNG, JPEG, BMP).</summary>
    public IReadOnlyList<string> CalibrationFiles { get; init; } = Array.Empty<string>();
    /// <summary>How an image becomes the model's float input.</summary>
    public Preprocessing Preprocessing { get; init; } = new();
    /// <summary>Cross-compilation settings.</summary>
    public ToolchainOptions Toolchain { get; init; } = new();
    /// <summary>Compiles and archives the generated C; default: <see cref="Toolchain.ArmToolchain"/> from <see cref="Toolchain"/>.</summary>
    public MCUNetV2.Compiler.Toolchain.INativeLibraryBuilder? LibraryBuilder { get; init; }
    /// <summary>Run the library under QEMU on calibration images and compare with the C# int8 reference.</summary>
    public bool Verify { get; init; } = true;
    /// <summary>How many calibration images the QEMU verification runs (0 = all).</summary>
    public int VerifyImages { get; init; } = 4;
    /// <summary>Also write the int8 model as a QDQ ONNX model, &lt;prefix&gt;.qdq.onnx, beside the library.</summary>
    public bool ExportQdq { get; init; }
    /// <summary>
    /// Largest acceptable planned arena (the activation SRAM of the chosen schedule, &lt;PREFIX&gt;_ARENA_BYTES) in bytes;
    /// null = no limit. Checked right after planning (MCU3003).
    /// </summary>
    public long? MaxSramBytes { get; init; }
    /// <summary>Largest acceptable flash footprint of the library (weights + code + constant tables) in bytes; null = no limit (MCU5007).</summary>
    public long? MaxFlashBytes { get; init; }
}

public enum ChannelOrder { Rgb, Bgr, Gray }

/// <summary>
/// Image -> model input: decode, convert to <see cref="Channels"/>, resize (bilinear, half-pixel centres) to the
/// model's input height and width, then x = (pixel - Mean[c]) * Scale[c] per channel.
/// Defaults match the VWW sample: RGB, x/127.5 - 1.
/// </summary>
public sealed class Preprocessing
{
    public ChannelOrder Channels { get; init; } = ChannelOrder.Rgb;
    public float[] Mean { get; init; } = { 127.5f };
    public float[] Scale { get; init; } = { 1f / 127.5f };
}

public sealed class ToolchainOptions
{
    /// <summary>Folder with arm-none-eabi-* tools; empty = search PATH.</summary>
    public string ToolchainDirectory { get; init; } = "";
    public string ToolPrefix { get; init; } = "arm-none-eabi-";
    public string CpuFlags { get; init; } = "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16";
    public string OptimizationFlags { get; init; } = "-O2";
    /// <summary>qemu-system-arm executable (name on PATH or full path).</summary>
    public string QemuPath { get; init; } = "qemu-system-arm";
}
