using MCUNetV2.Compiler.Quantization;

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
    /// <summary>
    /// PatchGrid="auto": search the grid (1x1 to 8x8, square or not) and the split jointly for the smallest peak SRAM
    /// within <see cref="MaxMacOverhead"/> (<see cref="Planning.PatchSearch"/>); <see cref="PatchRows"/>/<see cref="PatchCols"/> are ignored.
    /// </summary>
    public bool AutoPatchGrid { get; init; }
    /// <summary>Largest accepted halo recomputation of an automatically chosen plan: executed MACs / layer-by-layer MACs - 1.</summary>
    public double MaxMacOverhead { get; init; } = Planning.PatchSearch.DefaultMaxMacOverhead;
    /// <summary>
    /// Plan and emit a streamed input: a patch-based library also gets &lt;prefix&gt;_invoke_streamed, which reads each
    /// patch's input region through a callback into an arena buffer (counted), so the whole frame never has to be in SRAM.
    /// </summary>
    public bool StreamInput { get; init; }
    /// <summary>Forces the end of the per-patch stage: a count of leading layers ("13") or the name of the layer or tensor that ends it; null = searched.</summary>
    public string? PatchSplit { get; init; }
    /// <summary>
    /// Files used to calibrate activation ranges: images (PNG, JPEG, BMP), IDX files of images (plain or gzip), and raw
    /// model inputs as NumPy <c>.npy</c> or ONNX TensorProto <c>.pb</c> files (see <see cref="Input.CalibrationData"/>).
    /// They are read sorted by path, the samples of a file in file order.
    /// </summary>
    public IReadOnlyList<string> CalibrationFiles { get; init; } = Array.Empty<string>();
    /// <summary>At most this many calibration samples are used (the first ones in the order above); null = all.</summary>
    public int? CalibrationLimit { get; init; }
    /// <summary>How activation ranges are chosen from the calibration samples (method and, for Percentile, the percentile).</summary>
    public CalibrationOptions Calibration { get; init; } = CalibrationOptions.MinMax;
    /// <summary>Correct the int32 biases of Conv/FullyConnected layers for the mean weight quantization error (<see cref="QuantizerOptions.BiasCorrection"/>).</summary>
    public bool BiasCorrection { get; init; }
    /// <summary>
    /// Every layer whose SQNR (int8 vs float over the calibration samples) is below this many dB gives warning MCU2005;
    /// null = no check. The analysis itself runs whenever there are calibration samples.
    /// </summary>
    public double? MinLayerSqnrDb { get; init; } = 10;
    /// <summary>Also emit &lt;prefix&gt;_dequantize_output and &lt;prefix&gt;_invoke_float (float output; the only float code).</summary>
    public bool DequantizeOutput { get; init; }
    /// <summary>
    /// Store the pointwise and first-convolution (im2col) weights as int16 (PointwiseWeights="int16"): the kernel loads
    /// them instead of widening them, about 10% fewer instructions for VWW at twice those weights' flash.
    /// </summary>
    public bool WidePointwiseWeights { get; init; }
    /// <summary>Layout of the raw tensors (<c>.npy</c>, <c>.pb</c>) among the calibration files; images are not affected.</summary>
    public InputLayout InputLayout { get; init; } = InputLayout.Nchw;
    /// <summary>How an image (a picture file or an image of an IDX file) becomes the model's float input.</summary>
    public Preprocessing Preprocessing { get; init; } = new();
    /// <summary>Cross-compilation settings.</summary>
    public ToolchainOptions Toolchain { get; init; } = new();
    /// <summary>Compiles and archives the generated C; default: <see cref="Toolchain.ArmToolchain"/> from <see cref="Toolchain"/>.</summary>
    public MCUNetV2.Compiler.Toolchain.INativeLibraryBuilder? LibraryBuilder { get; init; }
    /// <summary>Run the library under QEMU on the first calibration samples and compare with the C# int8 reference.</summary>
    public bool Verify { get; init; } = true;
    /// <summary>How many calibration samples (the first ones) the QEMU verification runs (0 = all).</summary>
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

/// <summary>How an image whose size differs from the model input is fitted to it.</summary>
public enum ResizeMode
{
    /// <summary>Scale width and height independently to the model's size (the aspect ratio may change).</summary>
    Stretch,
    /// <summary>Scale (keeping the aspect ratio) so that the image covers the model's size, then take the centre.</summary>
    CenterCrop,
}

/// <summary>How resized pixels are sampled (half-pixel centres either way).</summary>
public enum Interpolation { Bilinear, Nearest }

/// <summary>Axis order of a raw input tensor without its batch axis: NCHW = [C,H,W] (ONNX), NHWC = [H,W,C].</summary>
public enum InputLayout { Nchw, Nhwc }

/// <summary>
/// Image -> model input: decode, convert to <see cref="Channels"/>, fit to the model's input height and width by
/// <see cref="Resize"/> with <see cref="Interpolation"/> (half-pixel centres; nothing is done when the size already
/// matches), then x = (pixel - Mean[c]) * Scale[c] per channel.
/// Defaults match the VWW sample: RGB, stretch, bilinear, x/127.5 - 1.
/// </summary>
public sealed class Preprocessing
{
    public ChannelOrder Channels { get; init; } = ChannelOrder.Rgb;
    public float[] Mean { get; init; } = { 127.5f };
    public float[] Scale { get; init; } = { 1f / 127.5f };
    public ResizeMode Resize { get; init; } = ResizeMode.Stretch;
    public Interpolation Interpolation { get; init; } = Interpolation.Bilinear;
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
