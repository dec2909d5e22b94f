using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MCUNetV2.Compiler.Input;

/// <summary>
/// NumPy <c>.npy</c> files (format versions 1, 2 and 3; also gzip-compressed): C-order arrays of float32, float64,
/// uint8 or int8, either byte order. The array is one raw model input or a batch of them (<see cref="RawTensors"/>);
/// values are used as they are.
/// </summary>
public static partial class NpyLoader
{
    /// <summary>The first six bytes of every .npy file.</summary>
    public static ReadOnlySpan<byte> Magic => new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y' };

    /// <summary>The header of a .npy file: element type, order and shape.</summary>
    /// <param name="Kind">'f' (float), 'u' (unsigned) or 'i' (signed integer).</param>
    /// <param name="ItemSize">bytes per element.</param>
    /// <param name="BigEndian">the elements are stored big-endian ('&gt;').</param>
    public sealed record Header(int Version, string Descr, char Kind, int ItemSize, bool BigEndian, bool FortranOrder, long[] Shape)
    {
        public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    }

    [GeneratedRegex(@"['""]descr['""]\s*:\s*['""]([^'""]*)['""]", RegexOptions.CultureInvariant)]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"['""]fortran_order['""]\s*:\s*(True|False)", RegexOptions.CultureInvariant)]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"['""]shape['""]\s*:\s*\(([^)]*)\)", RegexOptions.CultureInvariant)]
    private static partial Regex ShapePattern();

    /// <summary>Reads and checks the header; the stream is then at the first element.</summary>
    public static Header ReadHeader(Stream s, string path)
    {
        var prefix = new byte[8];
        if (s.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8 || !prefix.AsSpan(0, 6).SequenceEqual(Magic))
            throw CalibrationData.Unreadable(path, "not a NumPy .npy file (it does not start with the \\x93NUMPY magic)");
        int version = prefix[6];
        if (version is < 1 or > 3)
            throw CalibrationData.Unreadable(path, $"NumPy format version {version}.{prefix[7]} is not supported (1, 2 and 3 are)");
        long length;
        if (version == 1)
        {
            var n = new byte[2];
            s.ReadExactly(n);
            length = BinaryPrimitives.ReadUInt16LittleEndian(n);
        }
        else
        {
            var n = new byte[4];
            s.ReadExactly(n);
            length = BinaryPrimitives.ReadUInt32LittleEndian(n);
        }
        if (length > 1 << 20)
            throw CalibrationData.Unreadable(path, $"the .npy header claims {length:N0} bytes, implausibly many");
        var bytes = new byte[length];
        s.ReadExactly(bytes);
        var text = (version == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes);

        var descr = DescrPattern().Match(text);
        var fortran = FortranPattern().Match(text);
        var shape = ShapePattern().Match(text);
        if (!descr.Success || !fortran.Success || !shape.Success)
            throw CalibrationData.Unreadable(path, $"the .npy header is not a dictionary of 'descr', 'fortran_order' and 'shape' ({text.Trim()})");
        var d = descr.Groups[1].Value;
        if (d.Length < 3 || "<>|=".IndexOf(d[0]) < 0 || !int.TryParse(d.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out int size) ||
            (d[1], size) is not (('f', 4) or ('f', 8) or ('u', 1) or ('i', 1)))
            throw CalibrationData.Unreadable(path, $"NumPy dtype '{d}' is not supported; use float32, float64, uint8 or int8");
        var dims = new List<long>();
        foreach (var part in shape.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!long.TryParse(part.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out long dim) || dim > int.MaxValue)
                throw CalibrationData.Unreadable(path, $"the .npy shape ({shape.Groups[1].Value}) is not a tuple of sizes");
            dims.Add(dim);
        }
        if (dims.Aggregate(1.0, (a, b) => a * b) > 1L << 40)
            throw CalibrationData.Unreadable(path, $"the .npy shape ({shape.Groups[1].Value}) is implausibly large");
        if (fortran.Groups[1].Value == "True" && dims.Count(x => x != 1) > 1)
            throw CalibrationData.Unreadable(path, "the array is stored in Fortran order; save it in C order (numpy.ascontiguousarray)");
        return new Header(version, d, d[1], size, d[0] == '>', fortran.Groups[1].Value == "True", dims.ToArray());
    }

    /// <summary>The samples of a .npy file (one, or the batch along its first axis), at most <paramref name="max"/>.</summary>
    public static IReadOnlyList<CalibrationSample> Load(string path, CalibrationTarget target, int max = int.MaxValue)
    {
        using var s = CalibrationData.Open(path, out bool compressed);
        try
        {
            var h = ReadHeader(s, path);
            var (count, batched) = RawTensors.Count(h.Shape, target, path);
            int perSample = target.Shape.Elements;
            if (!compressed)
            {
                long expected = s.Position + h.Elements * h.ItemSize;
                if (s.Length != expected)
                    throw CalibrationData.Unreadable(path, s.Length < expected
                        ? $"the file ends after {s.Length:N0} bytes, before the {h.Elements:N0} elements of shape {RawTensors.Format(h.Shape)} (truncated?)"
                        : $"the file has {s.Length - expected:N0} bytes after the {h.Elements:N0} elements of shape {RawTensors.Format(h.Shape)}");
            }
            var samples = new List<CalibrationSample>();
            var buffer = new byte[perSample * h.ItemSize];
            for (int i = 0; i < count && samples.Count < max; i++)
            {
                s.ReadExactly(buffer);
                var values = Decode(buffer, h, perSample);
                for (int k = 0; k < values.Length; k++)
                    if (!float.IsFinite(values[k]))
                        throw CalibrationData.Unreadable(path, $"sample {i} holds a value that is not a finite float32 ({values[k]}) at element {k}");
                samples.Add(new CalibrationSample(path, batched ? i : null, RawTensors.ToNhwc(values, target)));
            }
            return samples;
        }
        catch (Exception e) when (e is IOException or InvalidDataException)
        {
            throw CalibrationData.Unreadable(path, e);
        }
    }

    private static float[] Decode(byte[] b, Header h, int n)
    {
        var r = new float[n];
        switch (h.Kind, h.ItemSize)
        {
            case ('f', 4):
                for (int i = 0; i < n; i++)
                {
                    var span = b.AsSpan(i * 4, 4);
                    r[i] = h.BigEndian ? BinaryPrimitives.ReadSingleBigEndian(span) : BinaryPrimitives.ReadSingleLittleEndian(span);
                }
                break;
            case ('f', 8):
                for (int i = 0; i < n; i++)
                {
                    var span = b.AsSpan(i * 8, 8);
                    r[i] = (float)(h.BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(span) : BinaryPrimitives.ReadDoubleLittleEndian(span));
                }
                break;
            case ('u', 1):
                for (int i = 0; i < n; i++) r[i] = b[i];
                break;
            default: // ('i', 1)
                for (int i = 0; i < n; i++) r[i] = (sbyte)b[i];
                break;
        }
        return r;
    }
}
