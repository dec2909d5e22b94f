using Google.Protobuf;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Onnx.Proto;

namespace MCUNetV2.Compiler.Input;

/// <summary>
/// ONNX <c>TensorProto</c> files (<c>.pb</c>, as the input_N.pb of ONNX test data sets): a float, double, uint8 or
/// int8 tensor (raw_data or typed fields; external data relative to the file) that is one raw model input or a batch
/// of them (<see cref="RawTensors"/>); values are used as they are.
/// </summary>
public static class TensorProtoLoader
{
    private static readonly TensorProto.Types.DataType[] Accepted =
    {
        TensorProto.Types.DataType.Float, TensorProto.Types.DataType.Double, TensorProto.Types.DataType.Uint8, TensorProto.Types.DataType.Int8,
    };

    /// <summary>The samples of a .pb file, at most <paramref name="max"/> (the first ones).</summary>
    public static IReadOnlyList<CalibrationSample> Load(string path, CalibrationTarget target, int max = int.MaxValue)
    {
        TensorProto proto;
        try
        {
            proto = TensorProto.Parser.ParseFrom(File.ReadAllBytes(path));
        }
        catch (InvalidProtocolBufferException e) // an IOException: caught first
        {
            throw CalibrationData.Unreadable(path, $"not an ONNX TensorProto ({e.Message})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CalibrationData.Unreadable(path, e);
        }
        var type = (TensorProto.Types.DataType)proto.DataType;
        if (type == TensorProto.Types.DataType.Undefined)
            throw CalibrationData.Unreadable(path, "not an ONNX TensorProto (it has no element type)");
        if (!Accepted.Contains(type))
            throw CalibrationData.Unreadable(path, $"the tensor's element type is {type}; calibration tensors are float, double, uint8 or int8");
        var (count, batched) = RawTensors.Count(proto.Dims.ToArray(), target, path);
        float[] values;
        try
        {
            values = ConstantTensor.Decode(proto, path).AsFloats();
        }
        catch (CompilerException e)
        {
            throw CalibrationData.Unreadable(path, e.Diagnostic.Message.Replace("initializer", "tensor", StringComparison.Ordinal));
        }
        int perSample = target.Shape.Elements;
        var samples = new List<CalibrationSample>();
        for (int i = 0; i < count && samples.Count < max; i++)
        {
            var sample = values.AsSpan(i * perSample, perSample).ToArray();
            for (int k = 0; k < sample.Length; k++)
                if (!float.IsFinite(sample[k]))
                    throw CalibrationData.Unreadable(path, $"sample {i} holds a value that is not a finite float32 ({sample[k]}) at element {k}");
            samples.Add(new CalibrationSample(path, batched ? i : null, RawTensors.ToNhwc(sample, target)));
        }
        return samples;
    }
}
