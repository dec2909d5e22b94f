using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Build.Tasks.Tests;

[TestClass]
public sealed class TinyModelMetadataTests
{
    [TestMethod]
    [DataRow("2x2", 2, 2)]
    [DataRow("1x1", 1, 1)]
    [DataRow(" 3 X 4 ", 3, 4)]
    [DataRow("2\u00D73", 2, 3)]
    [DataRow("", 1, 1)]
    [DataRow(null, 1, 1)]
    public void PatchGrid_Valid(string? text, int rows, int cols)
    {
        Assert.AreEqual((rows, cols), TinyModelMetadata.ParsePatchGrid(text));
    }

    [TestMethod]
    [DataRow("2")]
    [DataRow("2by2")]
    [DataRow("0x2")]
    [DataRow("2x0")]
    [DataRow("-1x2")]
    [DataRow("2x2x2")]
    [DataRow("65x1")]
    [DataRow("99999999999x1")]
    [DataRow("axb")]
    public void PatchGrid_Invalid(string text)
    {
        var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParsePatchGrid(text));
        Assert.AreEqual("PatchGrid", ex.MetadataName);
        StringAssert.Contains(ex.Message, text.Trim());
    }

    [TestMethod]
    [DataRow("RGB", ChannelOrder.Rgb)]
    [DataRow("rgb", ChannelOrder.Rgb)]
    [DataRow("BGR", ChannelOrder.Bgr)]
    [DataRow("Gray", ChannelOrder.Gray)]
    [DataRow("grey", ChannelOrder.Gray)]
    [DataRow("", ChannelOrder.Rgb)]
    public void ChannelOrder_Valid(string text, ChannelOrder expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseChannelOrder(text));
    }

    [TestMethod]
    public void ChannelOrder_Invalid()
    {
        var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseChannelOrder("YUV"));
        Assert.AreEqual("ChannelOrder", ex.MetadataName);
    }

    [TestMethod]
    public void Floats_OneOrPerChannel_SemicolonOrComma()
    {
        CollectionAssert.AreEqual(new[] { 127.5f }, TinyModelMetadata.ParseFloats("Mean", "127.5", 0, 3, false));
        CollectionAssert.AreEqual(new[] { 123.675f, 116.28f, 103.53f },
            TinyModelMetadata.ParseFloats("Mean", "123.675;116.28;103.53", 0, 3, false));
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f }, TinyModelMetadata.ParseFloats("Mean", "1, 2, 3", 0, 3, false));
        CollectionAssert.AreEqual(new[] { 5f }, TinyModelMetadata.ParseFloats("Mean", " ", 5f, 3, false));
        CollectionAssert.AreEqual(new[] { 1e-3f }, TinyModelMetadata.ParseFloats("Scale", "1e-3", 1, 1, true));
    }

    [TestMethod]
    [DataRow("1;2", 3, false)]      // neither one nor three values
    [DataRow("1;2;3", 1, false)]    // three values for a gray image
    [DataRow("abc", 3, false)]
    [DataRow("0", 3, true)]         // zero scale
    [DataRow("NaN", 3, false)]
    [DataRow("1;;2", 3, false)]
    public void Floats_Invalid(string text, int channels, bool nonZero)
    {
        Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseFloats("Mean", text, 0, channels, nonZero));
    }

    [TestMethod]
    public void Floats_AreCultureInvariant()
    {
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            try
            {
                System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.GetCultureInfo("de-DE");
            }
            catch (System.Globalization.CultureNotFoundException)
            {
                Assert.Inconclusive("no de-DE culture here (invariant globalization)");
            }
            CollectionAssert.AreEqual(new[] { 0.5f }, TinyModelMetadata.ParseFloats("Scale", "0.5", 1, 3, true));
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = saved;
        }
    }

    [TestMethod]
    [DataRow("true", true)]
    [DataRow("False", false)]
    [DataRow("", true)]
    public void Bool(string text, bool expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseBool("Verify", text, true));
        Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseBool("Verify", "maybe", true));
    }

    [TestMethod]
    public void NonNegativeInt()
    {
        Assert.AreEqual(4, TinyModelMetadata.ParseNonNegativeInt("VerifyImages", "", 4));
        Assert.AreEqual(0, TinyModelMetadata.ParseNonNegativeInt("VerifyImages", "0", 4));
        Assert.AreEqual(12, TinyModelMetadata.ParseNonNegativeInt("VerifyImages", " 12 ", 4));
        Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseNonNegativeInt("VerifyImages", "-1", 4));
        Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseNonNegativeInt("VerifyImages", "two", 4));
    }

    [TestMethod]
    [DataRow("Stretch", ResizeMode.Stretch)]
    [DataRow("", ResizeMode.Stretch)]
    [DataRow("CenterCrop", ResizeMode.CenterCrop)]
    [DataRow(" centercrop ", ResizeMode.CenterCrop)]
    [DataRow("Centre-Crop", ResizeMode.CenterCrop)]
    public void ResizeMode_Valid(string text, ResizeMode expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseResizeMode(text));
    }

    [TestMethod]
    [DataRow("Bilinear", Interpolation.Bilinear)]
    [DataRow("", Interpolation.Bilinear)]
    [DataRow("NEAREST", Interpolation.Nearest)]
    public void Interpolation_Valid(string text, Interpolation expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseInterpolation(text));
    }

    [TestMethod]
    [DataRow("NCHW", InputLayout.Nchw)]
    [DataRow("", InputLayout.Nchw)]
    [DataRow("nhwc", InputLayout.Nhwc)]
    public void InputLayout_Valid(string text, InputLayout expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseInputLayout(text));
    }

    [TestMethod]
    public void PreprocessingAndLayout_Invalid_NameTheMetadata()
    {
        Assert.AreEqual("ResizeMode", Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseResizeMode("Fill")).MetadataName);
        Assert.AreEqual("Interpolation", Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseInterpolation("Bicubic")).MetadataName);
        var layout = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseInputLayout("CHW"));
        Assert.AreEqual("InputLayout", layout.MetadataName);
        StringAssert.Contains(layout.Message, "NCHW, NHWC");
    }

    [TestMethod]
    public void CalibrationLimit_EmptyIsAll_ElseAtLeastOne()
    {
        Assert.IsNull(TinyModelMetadata.ParseCalibrationLimit(""));
        Assert.IsNull(TinyModelMetadata.ParseCalibrationLimit(null));
        Assert.AreEqual(500, TinyModelMetadata.ParseCalibrationLimit(" 500 "));
        foreach (var bad in new[] { "0", "-3", "all", "1.5", "99999999999" })
        {
            var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseCalibrationLimit(bad), bad);
            Assert.AreEqual("CalibrationLimit", ex.MetadataName);
            StringAssert.Contains(ex.Message, $"'{bad}'");
        }
    }

    [TestMethod]
    [DataRow("vww.onnx", "vww")]
    [DataRow("/models/MobileNet-V2 0.5.onnx", "mobilenet_v2_0_5")]
    [DataRow("2stage.onnx", "model_2stage")]
    [DataRow("Person_Detect.v3.onnx", "person_detect_v3")]
    [DataRow("caf\u00E9.onnx", "caf_")]
    public void DefaultPrefix(string path, string expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.DefaultPrefix(path));
        Assert.AreEqual(expected, TinyModelMetadata.ResolvePrefix("", path));
    }

    [TestMethod]
    public void ExplicitPrefix_MustBeACIdentifier()
    {
        Assert.AreEqual("Person_Net", TinyModelMetadata.ResolvePrefix(" Person_Net ", "x.onnx"));
        var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ResolvePrefix("my-model", "x.onnx"));
        Assert.AreEqual("Prefix", ex.MetadataName);
        Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ResolvePrefix("1net", "x.onnx"));
    }

    [TestMethod]
    [DataRow("MinMax", CalibrationMethod.MinMax)]
    [DataRow("min-max", CalibrationMethod.MinMax)]
    [DataRow(" percentile ", CalibrationMethod.Percentile)]
    [DataRow("PERCENTILE", CalibrationMethod.Percentile)]
    [DataRow("MSE", CalibrationMethod.Mse)]
    [DataRow("mse", CalibrationMethod.Mse)]
    [DataRow("", CalibrationMethod.MinMax)]
    [DataRow(null, CalibrationMethod.MinMax)]
    public void CalibrationMethod_Valid(string? text, CalibrationMethod expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseCalibrationMethod(text));
    }

    [TestMethod]
    [DataRow("KL")]
    [DataRow("entropy")]
    [DataRow("min max")]
    public void CalibrationMethod_Invalid(string text)
    {
        var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseCalibrationMethod(text));
        Assert.AreEqual("CalibrationMethod", ex.MetadataName);
        StringAssert.Contains(ex.Message, "MinMax, Percentile, MSE");
    }

    [TestMethod]
    [DataRow("99.99", 99.99)]
    [DataRow(" 100 ", 100.0)]
    [DataRow("50.001", 50.001)]
    [DataRow("", 99.99)]
    [DataRow(null, 99.99)]
    public void CalibrationPercentile_Valid(string? text, double expected)
    {
        Assert.AreEqual(expected, TinyModelMetadata.ParseCalibrationPercentile(text), 1e-12);
    }

    [TestMethod]
    [DataRow("50")]
    [DataRow("100.01")]
    [DataRow("0")]
    [DataRow("-99")]
    [DataRow("99,9")]
    [DataRow("high")]
    [DataRow("NaN")]
    public void CalibrationPercentile_Invalid(string text)
    {
        var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseCalibrationPercentile(text));
        Assert.AreEqual("CalibrationPercentile", ex.MetadataName);
        StringAssert.Contains(ex.Message, "(50, 100]");
    }

    [TestMethod]
    public void MinLayerSqnr_NumberOrEmpty()
    {
        Assert.AreEqual(10.0, TinyModelMetadata.ParseMinLayerSqnr("10"));
        Assert.AreEqual(12.5, TinyModelMetadata.ParseMinLayerSqnr(" 12.5 "));
        Assert.AreEqual(-3.0, TinyModelMetadata.ParseMinLayerSqnr("-3"));
        Assert.IsNull(TinyModelMetadata.ParseMinLayerSqnr(""));
        Assert.IsNull(TinyModelMetadata.ParseMinLayerSqnr(null));
        foreach (var bad in new[] { "ten", "10dB", "1e999", "Infinity", "10,5" })
        {
            var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseMinLayerSqnr(bad), bad);
            Assert.AreEqual("MinLayerSqnr", ex.MetadataName);
        }
    }
}
