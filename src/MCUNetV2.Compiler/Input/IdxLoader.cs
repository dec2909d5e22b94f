using System.Buffers.Binary;

namespace MCUNetV2.Compiler.Input;

/// <summary>
/// IDX files, the format of the MNIST data set (plain or gzip-compressed): two zero bytes, the element type (0x08 =
/// uint8), the number of dimensions, each dimension as a big-endian int32, then the elements in C order. For
/// calibration a file holds N uint8 images, [N,H,W] (gray) or [N,H,W,C] (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA);
/// every image is one sample, preprocessed like a picture (<see cref="ImagePreprocessing"/>: channel order, resize to
/// the model input when its size differs, Mean/Scale).
/// </summary>
public static class IdxLoader
{
    /// <summary>A whole IDX file of uint8 elements.</summary>
    public sealed record IdxData(int[] Dims, byte[] Data);

    /// <summary>IDX element types: code -> (name, bytes per element).</summary>
    private static readonly Dictionary<byte, (string Name, int Size)> Types = new()
    {
        [0x08] = ("uint8", 1), [0x09] = ("int8", 1), [0x0B] = ("int16", 2), [0x0C] = ("int32", 4), [0x0D] = ("float32", 4), [0x0E] = ("float64", 8),
    };

    /// <summary>Whether <paramref name="head"/> starts a complete IDX file of <paramref name="length"/> bytes.</summary>
    public static bool LooksLikeIdx(byte[] head, long length)
    {
        if (head.Length < 4 || head[0] != 0 || head[1] != 0 || !Types.TryGetValue(head[2], out var type) || head[3] is < 1 or > 4) return false;
        int rank = head[3];
        if (head.Length < 4 + 4 * Math.Min(rank, 3)) return false;
        if (rank == 4) return length > 20; // the fourth dimension is beyond the head; the loader checks the length
        long elements = 1;
        for (int i = 0; i < rank; i++) elements *= BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(4 + 4 * i));
        return length == 4 + 4L * rank + elements * type.Size;
    }

    /// <summary>Reads the header; the stream is then at the first element.</summary>
    private static int[] ReadHeader(Stream s, string path, bool compressed)
    {
        var magic = new byte[4];
        if (s.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4 || magic[0] != 0 || magic[1] != 0 || magic[3] == 0)
            throw CalibrationData.Unreadable(path, $"not an IDX file{(compressed ? " (inside the gzip data)" : "")}: it does not start with two zero bytes, " +
                "an element type and a number of dimensions (calibration files are pictures, IDX files plain or gzip, .npy or .pb tensors)");
        if (!Types.TryGetValue(magic[2], out var type))
            throw CalibrationData.Unreadable(path, $"IDX element type 0x{magic[2]:X2} is unknown");
        if (magic[2] != 0x08)
            throw CalibrationData.Unreadable(path, $"the IDX file holds {type.Name} elements; calibration IDX files hold uint8 images (type 0x08)");
        var dims = new int[magic[3]];
        var b = new byte[4];
        for (int i = 0; i < dims.Length; i++)
        {
            s.ReadExactly(b);
            uint d = BinaryPrimitives.ReadUInt32BigEndian(b);
            if (d > int.MaxValue) throw CalibrationData.Unreadable(path, $"IDX dimension {i} is implausibly large ({d})");
            dims[i] = (int)d;
        }
        if (dims.Aggregate(1.0, (a, x) => a * x) > int.MaxValue)
            throw CalibrationData.Unreadable(path, $"the IDX file claims {RawTensors.Format(dims.Select(x => (long)x))} elements, implausibly many");
        return dims;
    }

    private static void CheckLength(Stream s, string path, bool compressed, long elements, int[] dims)
    {
        if (compressed) return;
        long expected = s.Position + elements;
        if (s.Length != expected)
            throw CalibrationData.Unreadable(path, s.Length < expected
                ? $"the file ends after {s.Length:N0} bytes, before the {elements:N0} elements of shape {RawTensors.Format(dims.Select(x => (long)x))} (truncated?)"
                : $"the file has {s.Length - expected:N0} bytes after the {elements:N0} elements of shape {RawTensors.Format(dims.Select(x => (long)x))}");
    }

    /// <summary>A whole uint8 IDX file (e.g. MNIST labels, [N]).</summary>
    public static IdxData Read(string path)
    {
        using var s = CalibrationData.Open(path, out bool compressed);
        try
        {
            var dims = ReadHeader(s, path, compressed);
            long elements = dims.Aggregate(1L, (a, x) => a * x);
            CheckLength(s, path, compressed, elements, dims);
            var data = new byte[elements];
            s.ReadExactly(data);
            if (compressed && s.ReadByte() != -1)
                throw CalibrationData.Unreadable(path, $"the file has bytes after the {elements:N0} elements of shape {RawTensors.Format(dims.Select(x => (long)x))}");
            return new IdxData(dims, data);
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw CalibrationData.Unreadable(path, e);
        }
    }

    /// <summary>The images of an IDX file as model inputs, at most <paramref name="max"/> (the first ones).</summary>
    public static IReadOnlyList<CalibrationSample> Load(string path, CalibrationTarget target, int max = int.MaxValue)
    {
        using var s = CalibrationData.Open(path, out bool compressed);
        try
        {
            var dims = ReadHeader(s, path, compressed);
            if (dims.Length is < 3 or > 4 || (dims.Length == 4 && dims[3] is < 1 or > 4) || (dims.Length >= 3 && (dims[1] == 0 || dims[2] == 0)))
                throw new Diagnostics.CompilerException(Diagnostics.ErrorCodes.CalibrationShapeMismatch,
                    $"IDX file '{path}' has shape {RawTensors.Format(dims.Select(x => (long)x))}, which is not a list of images: calibration IDX files hold " +
                    $"[N,H,W] gray or [N,H,W,C] images (C = 1 to 4) that are resized to the model input {target.Shape.H}x{target.Shape.W}" +
                    (dims.Length == 1 ? " (a one-dimensional IDX file is a list of labels: leave it out of Calibration)" : ""), path);
            int n = dims[0], h = dims[1], w = dims[2], c = dims.Length == 4 ? dims[3] : 1;
            CheckLength(s, path, compressed, (long)n * h * w * c, dims);
            ImagePreprocessing.CheckChannels(target.Preprocessing, target.Shape, path);
            var samples = new List<CalibrationSample>(Math.Min(n, max));
            var image = new byte[h * w * c];
            for (int i = 0; i < n && samples.Count < max; i++)
            {
                s.ReadExactly(image);
                samples.Add(new CalibrationSample(path, i, ImagePreprocessing.ToModelInput(image, w, h, c, target.Preprocessing, target.Shape, path)));
            }
            return samples;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw CalibrationData.Unreadable(path, e);
        }
    }
}
