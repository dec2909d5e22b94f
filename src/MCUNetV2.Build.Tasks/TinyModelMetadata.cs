using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Build.Tasks;

/// <summary>A metadata value the task refuses: which metadata, and why.</summary>
internal sealed class MetadataException : Exception
{
    public string MetadataName { get; }

    public MetadataException(string metadataName, string message) : base(message)
    {
        MetadataName = metadataName;
    }
}

/// <summary>
/// Parses and validates TinyModel item metadata. Every parser throws <see cref="MetadataException"/> with a message
/// that names the metadata and the accepted form; the task turns it into error MCU4001.
/// </summary>
internal static partial class TinyModelMetadata
{
    public const string PatchGrid = "PatchGrid";
    public const string Calibration = "Calibration";
    public const string Prefix = "Prefix";
    public const string ChannelOrder = "ChannelOrder";
    public const string Mean = "Mean";
    public const string Scale = "Scale";
    public const string Verify = "Verify";
    public const string VerifyImages = "VerifyImages";
    public const string ExportQdq = "ExportQdq";
    public const string MaxSramBytes = "MaxSramBytes";
    public const string MaxFlashBytes = "MaxFlashBytes";
    public const string CalibrationLimit = "CalibrationLimit";
    public const string InputLayout = "InputLayout";
    public const string ResizeMode = "ResizeMode";
    public const string Interpolation = "Interpolation";
    public const string CalibrationMethod = "CalibrationMethod";
    public const string CalibrationPercentile = "CalibrationPercentile";
    public const string BiasCorrection = "BiasCorrection";
    public const string MinLayerSqnr = "MinLayerSqnr";
    public const string DequantizeOutput = "DequantizeOutput";
    public const string PointwiseWeights = "PointwiseWeights";
    public const string MaxMacOverhead = "MaxMacOverhead";
    public const string PatchSplit = "PatchSplit";
    public const string StreamInput = "StreamInput";

    public const double DefaultCalibrationPercentile = 99.99;

    /// <summary>Largest accepted patch-grid dimension; more patches than this per side cannot pay off on an MCU.</summary>
    public const int MaxPatchGridDimension = 64;

    public const float DefaultMean = 127.5f;
    public const float DefaultScale = 1f / 127.5f;

    [GeneratedRegex(@"^\s*(\d{1,9})\s*[xX\u00D7]\s*(\d{1,9})\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex PatchGridPattern();

    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex CIdentifierPattern();

    [GeneratedRegex(@"^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(B|K|KB|KiB|M|MB|MiB)?\s*$", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex ByteSizePattern();

    /// <summary>"auto" (searched with the split, case-insensitive): true; else false and <see cref="ParsePatchGrid"/> applies.</summary>
    public static bool IsAutoPatchGrid(string? value) => string.Equals(value?.Trim(), "auto", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// MaxMacOverhead: a fraction ("0.3") or a percentage ("30%") of extra MACs, >= 0; empty = the compiler's default.
    /// </summary>
    public static double ParseMaxMacOverhead(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return Compiler.Planning.PatchSearch.DefaultMaxMacOverhead;
        var v = value.Trim();
        bool percent = v.EndsWith('%');
        if (percent) v = v[..^1].TrimEnd();
        if (!double.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double x) || !double.IsFinite(x))
            throw new MetadataException(MaxMacOverhead,
                $"MaxMacOverhead '{value}' is not a fraction or percentage of extra MACs (for example 0.3 or 30%; '.' is the decimal point).");
        return percent ? x / 100 : x;
    }

    /// <summary>"RxC" (for example "2x2" or "3x4"); empty means 1x1. "auto" is handled by <see cref="IsAutoPatchGrid"/>.</summary>
    public static (int Rows, int Cols) ParsePatchGrid(string? value)
    {
        if (string.IsNullOrWhiteSpace(value) || IsAutoPatchGrid(value))
            return (1, 1);
        var match = PatchGridPattern().Match(value);
        if (!match.Success)
            throw new MetadataException(PatchGrid,
                $"PatchGrid '{value}' is not of the form RxC (rows x columns, for example 2x2 or 1x1) or 'auto'.");
        int rows = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        int cols = int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
        if (rows < 1 || cols < 1 || rows > MaxPatchGridDimension || cols > MaxPatchGridDimension)
            throw new MetadataException(PatchGrid,
                $"PatchGrid '{value}': rows and columns must each be between 1 and {MaxPatchGridDimension}.");
        return (rows, cols);
    }

    /// <summary>
    /// One of a few words, case-insensitive and with '-' ignored; empty means <paramref name="fallback"/>. Otherwise MCU4001
    /// "<paramref name="metadata"/> 'value' is not one of <paramref name="choices"/>."
    /// </summary>
    private static T ParseChoice<T>(string metadata, string? value, T fallback, string choices, params (string Word, T Value)[] words)
    {
        if (string.IsNullOrWhiteSpace(value))
            return fallback;
        var key = value.Trim().ToLowerInvariant().Replace("-", "", StringComparison.Ordinal);
        foreach (var (word, result) in words)
            if (word == key) return result;
        throw new MetadataException(metadata, $"{metadata} '{value}' is not one of {choices}.");
    }

    /// <summary>RGB, BGR or Gray (case-insensitive; Grey and Grayscale are accepted too); empty means RGB.</summary>
    public static ChannelOrder ParseChannelOrder(string? value) =>
        ParseChoice(ChannelOrder, value, Compiler.Pipeline.ChannelOrder.Rgb, "RGB, BGR, Gray",
            ("rgb", Compiler.Pipeline.ChannelOrder.Rgb), ("bgr", Compiler.Pipeline.ChannelOrder.Bgr), ("gray", Compiler.Pipeline.ChannelOrder.Gray),
            ("grey", Compiler.Pipeline.ChannelOrder.Gray), ("grayscale", Compiler.Pipeline.ChannelOrder.Gray), ("greyscale", Compiler.Pipeline.ChannelOrder.Gray));

    /// <summary>Stretch or CenterCrop (case-insensitive; Center-Crop, CentreCrop and Centre-Crop too); empty means Stretch.</summary>
    public static ResizeMode ParseResizeMode(string? value) =>
        ParseChoice(ResizeMode, value, Compiler.Pipeline.ResizeMode.Stretch, "Stretch, CenterCrop",
            ("stretch", Compiler.Pipeline.ResizeMode.Stretch), ("centercrop", Compiler.Pipeline.ResizeMode.CenterCrop), ("centrecrop", Compiler.Pipeline.ResizeMode.CenterCrop));

    /// <summary>Bilinear or Nearest (case-insensitive); empty means Bilinear.</summary>
    public static Interpolation ParseInterpolation(string? value) =>
        ParseChoice(Interpolation, value, Compiler.Pipeline.Interpolation.Bilinear, "Bilinear, Nearest",
            ("bilinear", Compiler.Pipeline.Interpolation.Bilinear), ("nearest", Compiler.Pipeline.Interpolation.Nearest));

    /// <summary>NCHW or NHWC (case-insensitive); empty means NCHW, the ONNX layout.</summary>
    public static InputLayout ParseInputLayout(string? value) =>
        ParseChoice(InputLayout, value, Compiler.Pipeline.InputLayout.Nchw, "NCHW, NHWC (the axis order of .npy and .pb calibration tensors)",
            ("nchw", Compiler.Pipeline.InputLayout.Nchw), ("nhwc", Compiler.Pipeline.InputLayout.Nhwc));

    /// <summary>int8 or int16 (case-insensitive): the width of the pointwise weights in flash; empty means int8. True for int16.</summary>
    public static bool ParsePointwiseWeights(string? value) =>
        ParseChoice(PointwiseWeights, value, false, "int8, int16 (int16: twice the pointwise weights' flash, fewer instructions)",
            ("int8", false), ("int16", true));

    /// <summary>MinMax, Percentile or MSE (case-insensitive; Min-Max too); empty means MinMax.</summary>
    public static Compiler.Quantization.CalibrationMethod ParseCalibrationMethod(string? value) =>
        ParseChoice(CalibrationMethod, value, Compiler.Quantization.CalibrationMethod.MinMax, "MinMax, Percentile, MSE",
            ("minmax", Compiler.Quantization.CalibrationMethod.MinMax), ("percentile", Compiler.Quantization.CalibrationMethod.Percentile),
            ("mse", Compiler.Quantization.CalibrationMethod.Mse));

    /// <summary>The two-sided percentile of the Percentile method, in (50, 100]; empty means 99.99.</summary>
    public static double ParseCalibrationPercentile(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return DefaultCalibrationPercentile;
        if (!double.TryParse(value.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double p) || !(p > 50 && p <= 100))
            throw new MetadataException(CalibrationPercentile,
                $"CalibrationPercentile '{value}' is not a number in (50, 100] (the percentile of the observed values kept by CalibrationMethod=Percentile, e.g. 99.99; '.' is the decimal point).");
        return p;
    }

    /// <summary>A threshold in dB (any finite number, '.' as the decimal point); empty means no check (null).</summary>
    public static double? ParseMinLayerSqnr(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (!double.TryParse(value.Trim(), NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out double db) || !double.IsFinite(db))
            throw new MetadataException(MinLayerSqnr,
                $"MinLayerSqnr '{value}' is not a number of dB (e.g. 10; '.' is the decimal point); leave it empty to turn the check off.");
        return db;
    }

    /// <summary>A whole number &gt;= 1 capping the calibration samples; empty means all (null).</summary>
    public static int? ParseCalibrationLimit(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        if (!int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1)
            throw new MetadataException(CalibrationLimit,
                $"CalibrationLimit '{value}' is not a whole number >= 1 (the number of calibration samples to use); leave it empty to use all.");
        return n;
    }

    public static int ChannelCount(ChannelOrder order) => order == Compiler.Pipeline.ChannelOrder.Gray ? 1 : 3;

    /// <summary>
    /// One float for all channels, or one per channel, separated by ';' or ','. Invariant culture (a '.' decimal point).
    /// </summary>
    public static float[] ParseFloats(string metadataName, string? value, float defaultValue, int channels, bool nonZero)
    {
        if (string.IsNullOrWhiteSpace(value))
            return new[] { defaultValue };
        var parts = value.Split(new[] { ';', ',' }, StringSplitOptions.TrimEntries);
        var result = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out float f) || !float.IsFinite(f))
                throw new MetadataException(metadataName,
                    $"{metadataName} '{value}': '{parts[i]}' is not a number (use '.' as the decimal point and ';' or ',' between channels).");
            if (nonZero && f == 0f)
                throw new MetadataException(metadataName, $"{metadataName} '{value}': values must not be zero.");
            result[i] = f;
        }
        if (result.Length != 1 && result.Length != channels)
            throw new MetadataException(metadataName,
                $"{metadataName} '{value}' has {result.Length} values; give one for all channels or one per channel ({channels}).");
        return result;
    }

    /// <summary>true/false (also yes/no, on/off, 1/0), case-insensitive; empty means the default.</summary>
    public static bool ParseBool(string metadataName, string? value, bool defaultValue)
    {
        if (string.IsNullOrWhiteSpace(value))
            return defaultValue;
        switch (value.Trim().ToLowerInvariant())
        {
            case "true": case "yes": case "on": case "1": return true;
            case "false": case "no": case "off": case "0": return false;
            default:
                throw new MetadataException(metadataName, $"{metadataName} '{value}' is not true or false.");
        }
    }

    /// <summary>A whole number &gt;= 0; empty means the default.</summary>
    public static int ParseNonNegativeInt(string metadataName, string? value, int defaultValue)
    {
        if (string.IsNullOrWhiteSpace(value))
            return defaultValue;
        if (!int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new MetadataException(metadataName, $"{metadataName} '{value}' is not a whole number >= 0.");
        return n;
    }

    /// <summary>
    /// A memory budget in bytes: a whole number, or a number with a unit, K, KB or KiB (1024 bytes) or M, MB or MiB
    /// (1024 x 1024 bytes), case-insensitive, e.g. 262144, 256K, 256KiB, 1.5M. Empty means no limit (null).
    /// </summary>
    public static long? ParseByteSize(string metadataName, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return null;
        var match = ByteSizePattern().Match(value);
        string Form() =>
            $"{metadataName} '{value}' is not a size in bytes; write a whole number of bytes or a number with K, KiB, M or MiB (binary units: 256K = 262,144 bytes), or leave it empty for no limit.";
        if (!match.Success)
            throw new MetadataException(metadataName, Form());
        var number = decimal.Parse(match.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
        decimal unit = match.Groups[2].Value.ToUpperInvariant() switch
        {
            "K" or "KB" or "KIB" => 1024m,
            "M" or "MB" or "MIB" => 1024m * 1024m,
            _ => 1m,
        };
        var bytes = number * unit;
        if (bytes != decimal.Truncate(bytes))
            throw new MetadataException(metadataName, $"{metadataName} '{value}' is not a whole number of bytes ({bytes} bytes).");
        if (bytes <= 0)
            throw new MetadataException(metadataName, $"{metadataName} '{value}' must be more than 0 bytes; leave it empty for no limit.");
        if (bytes > long.MaxValue)
            throw new MetadataException(metadataName, Form());
        return (long)bytes;
    }

    /// <summary>
    /// An explicit Prefix must already be a C identifier; an empty one is derived from the model's file name.
    /// </summary>
    public static string ResolvePrefix(string? value, string modelPath)
    {
        if (string.IsNullOrWhiteSpace(value))
            return DefaultPrefix(modelPath);
        var prefix = value.Trim();
        if (!CIdentifierPattern().IsMatch(prefix))
            throw new MetadataException(Prefix,
                $"Prefix '{value}' is not a C identifier (letters, digits and '_', not starting with a digit).");
        return prefix;
    }

    /// <summary>
    /// The file name without extension, lower case, every character other than a-z, 0-9 and '_' replaced by '_',
    /// and "model_" put in front when it would start with a digit (or be empty).
    /// build/MCUNetV2.Build.targets computes the same name for its Outputs: keep the two in step.
    /// </summary>
    public static string DefaultPrefix(string modelPath)
    {
        var name = Path.GetFileNameWithoutExtension(modelPath).ToLowerInvariant();
        var sb = new StringBuilder(name.Length);
        foreach (char c in name)
            sb.Append(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '_' ? c : '_');
        if (sb.Length == 0 || char.IsAsciiDigit(sb[0]))
            sb.Insert(0, "model_");
        return sb.ToString();
    }
}
