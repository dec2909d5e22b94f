using System.IO.Compression;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Compiler.Input;

/// <summary>The kinds of calibration file.</summary>
public enum CalibrationFormat
{
    /// <summary>A picture (PNG, JPEG, BMP): one sample, preprocessed.</summary>
    Image,
    /// <summary>IDX (the MNIST format), plain or gzip: N uint8 images, each one sample, preprocessed.</summary>
    Idx,
    /// <summary>NumPy .npy (plain or gzip): one raw model input or a batch, used as it is.</summary>
    Npy,
    /// <summary>ONNX TensorProto .pb (as in ONNX test data sets): one raw model input or a batch, used as it is.</summary>
    TensorProto,
}

/// <summary>What the calibration samples must become: the model input they feed and how files are turned into it.</summary>
/// <param name="Shape">The model input (NHWC, batch 1).</param>
/// <param name="Preprocessing">How an image (picture file or IDX image) becomes the input.</param>
/// <param name="Layout">Axis order of raw tensors (.npy, .pb) without the batch axis.</param>
/// <param name="OnnxRank">Rank of the model's ONNX input: 3 or 4 means a raw sample is [C,H,W] (or [H,W,C]); 1 or 2 a vector [K].</param>
public sealed record CalibrationTarget(TensorShape Shape, Preprocessing Preprocessing, InputLayout Layout = InputLayout.Nchw, int OnnxRank = 4);

/// <summary>One calibration sample: the model's float input (NHWC) and where it came from.</summary>
/// <param name="File">The file it was read from.</param>
/// <param name="Index">Its position in a file of several samples (IDX, or a batch tensor); null for a single-sample file.</param>
/// <param name="Input">The model input, NHWC.</param>
public sealed record CalibrationSample(string File, int? Index, float[] Input)
{
    /// <summary>File name, with [index] for a sample of a multi-sample file.</summary>
    public string Name => Index is { } i ? $"{Path.GetFileName(File)}[{i}]" : Path.GetFileName(File);
}

/// <summary>
/// The front of the calibration loaders: turns the calibration files of a TinyModel into model inputs. Files are read
/// sorted by path (ordinal), the samples of a file in file order, and reading stops after <c>limit</c> samples, so the
/// first N samples are always the same ones. The format is told by the file's content and name
/// (<see cref="Detect"/>); a file that cannot be read or decoded is MCU2002, a tensor that does not fit the model
/// input MCU2004, and files that hold no sample at all MCU2001. Samples are never made up.
/// </summary>
public static class CalibrationData
{
    private static readonly byte[] GzipMagic = { 0x1F, 0x8B };

    /// <summary>The model inputs (float, NHWC) of <paramref name="files"/>; see <see cref="LoadSamples"/>.</summary>
    public static IReadOnlyList<float[]> Load(IEnumerable<string> files, Preprocessing preprocessing, TensorShape inputShape,
        InputLayout layout = InputLayout.Nchw, int? limit = null, int onnxRank = 4) =>
        LoadSamples(files, new CalibrationTarget(inputShape, preprocessing, layout, onnxRank), limit).Select(s => s.Input).ToList();

    /// <summary>
    /// The samples of <paramref name="files"/> (sorted by path), at most <paramref name="limit"/> (null = all).
    /// No files give no samples; files that give none throw MCU2001.
    /// </summary>
    public static IReadOnlyList<CalibrationSample> LoadSamples(IEnumerable<string> files, CalibrationTarget target, int? limit = null)
    {
        if (limit is <= 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "the limit must be at least 1 (null = all samples)");
        var sorted = files.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).OrderBy(f => f, StringComparer.Ordinal).ToList();
        var samples = new List<CalibrationSample>();
        foreach (var file in sorted)
        {
            int room = limit is { } l ? l - samples.Count : int.MaxValue;
            if (room <= 0) break;
            samples.AddRange(LoadFile(file, target, room));
        }
        if (sorted.Count > 0 && samples.Count == 0)
            throw new CompilerException(ErrorCodes.CalibrationMissing,
                $"the calibration file(s) hold no samples ({string.Join(", ", sorted.Take(3).Select(Path.GetFileName))}{(sorted.Count > 3 ? ", ..." : "")}: " +
                "every IDX file or tensor has a batch of 0); activation ranges are never guessed: give files with at least one sample",
                sorted[0]);
        return samples;
    }

    /// <summary>The samples of one file, at most <paramref name="max"/>.</summary>
    public static IReadOnlyList<CalibrationSample> LoadFile(string path, CalibrationTarget target, int max = int.MaxValue)
    {
        return Detect(path) switch
        {
            CalibrationFormat.Idx => IdxLoader.Load(path, target, max),
            CalibrationFormat.Npy => NpyLoader.Load(path, target, max),
            CalibrationFormat.TensorProto => TensorProtoLoader.Load(path, target, max),
            _ => new[] { new CalibrationSample(path, null, ImageLoader.Load(path, target.Preprocessing, target.Shape)) },
        };
    }

    /// <summary>
    /// The format of a calibration file: <c>.npy</c> and <c>.pb</c> by their extension; otherwise by content: gzip
    /// (then a NumPy file inside is .npy, anything else must be IDX), the NumPy magic, or a complete IDX header
    /// (two zero bytes, an element type, 1 to 4 dimensions, a length that matches); a name containing "idx" is IDX
    /// too (so that a broken one is reported as IDX); everything else is decoded as a picture.
    /// </summary>
    public static CalibrationFormat Detect(string path)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".npy") return CalibrationFormat.Npy;
        if (ext == ".pb") return CalibrationFormat.TensorProto;
        byte[] head;
        long length;
        try
        {
            using var s = File.OpenRead(path);
            length = s.Length;
            head = ReadHead(s, 16);
            if (head.AsSpan().StartsWith(GzipMagic))
            {
                s.Position = 0;
                using var gz = new GZipStream(s, CompressionMode.Decompress);
                var inner = ReadHead(gz, 8);
                return inner.AsSpan().StartsWith(NpyLoader.Magic) ? CalibrationFormat.Npy : CalibrationFormat.Idx;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            if (ext == ".gz") return CalibrationFormat.Idx; // let the loader report the broken gzip stream
            throw Unreadable(path, e);
        }
        if (ext == ".gz") return CalibrationFormat.Idx; // not gzip after all: the IDX loader says so
        if (head.AsSpan().StartsWith(NpyLoader.Magic)) return CalibrationFormat.Npy;
        if (IdxLoader.LooksLikeIdx(head, length)) return CalibrationFormat.Idx;
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.Contains("idx", StringComparison.Ordinal)) return CalibrationFormat.Idx;
        return CalibrationFormat.Image;
    }

    /// <summary>Up to <paramref name="count"/> first bytes of a stream.</summary>
    private static byte[] ReadHead(Stream s, int count)
    {
        var buffer = new byte[count];
        int n = s.ReadAtLeast(buffer, count, throwOnEndOfStream: false);
        return buffer[..n];
    }

    /// <summary>
    /// Opens a calibration file for reading, decompressing it when it starts with the gzip magic. <paramref name="compressed"/>
    /// tells which; the stream is seekable (its length known) only when not compressed.
    /// </summary>
    internal static Stream Open(string path, out bool compressed)
    {
        try
        {
            var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var head = ReadHead(file, 2);
            file.Position = 0;
            compressed = head.AsSpan().SequenceEqual(GzipMagic);
            if (!compressed) return file;
            return new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unreadable(path, e);
        }
    }

    /// <summary>MCU2002 for a file that cannot be read or decoded.</summary>
    internal static CompilerException Unreadable(string path, Exception e) => Unreadable(path, e is EndOfStreamException
        ? "the file ends before the data its header describes (truncated?)"
        : e is InvalidDataException ? $"the gzip data is corrupt ({e.Message})" : e.Message);

    /// <summary>MCU2002 for a file that cannot be read or decoded.</summary>
    internal static CompilerException Unreadable(string path, string why) =>
        new(ErrorCodes.CalibrationUnreadable, $"cannot read calibration file '{path}': {why}", path);
}
