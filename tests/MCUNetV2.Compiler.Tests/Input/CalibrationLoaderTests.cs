using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Google.Protobuf;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Input;
using MCUNetV2.Compiler.Onnx.Proto;
using MCUNetV2.Compiler.Pipeline;
using DataType = MCUNetV2.Compiler.Onnx.Proto.TensorProto.Types.DataType;

namespace MCUNetV2.Compiler.Tests.Input;

/// <summary>The calibration loaders (IDX, .npy, .pb, pictures) and their front, <see cref="CalibrationData"/>.</summary>
[TestClass]
public sealed class CalibrationLoaderTests
{
    private static string _dir = "";

    [ClassInitialize]
    public static void Init(TestContext _) => _dir = Directory.CreateTempSubdirectory("mcunet-calibration-").FullName;

    [ClassCleanup]
    public static void Cleanup() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>A small model input with distinct H, W and C (so that a wrong axis order shows): 2 x 3 x 4, NHWC.</summary>
    private static readonly TensorShape Small = new(2, 3, 4);

    private static readonly Preprocessing Raw = new() { Channels = ChannelOrder.Gray, Mean = new[] { 0f }, Scale = new[] { 1f } };

    private static CalibrationTarget Target(TensorShape shape, InputLayout layout = InputLayout.Nchw, Preprocessing? pre = null) =>
        new(shape, pre ?? Raw, layout);

    private static string NewFile(string name, byte[] content)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, Guid.NewGuid().ToString("N"))).FullName;
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    private static CompilerException Refused(Action load, string code)
    {
        var e = Assert.ThrowsExactly<CompilerException>(load);
        Assert.AreEqual(code, e.Diagnostic.Code, e.Message);
        Assert.IsFalse(string.IsNullOrEmpty(e.Diagnostic.File), e.Message);
        return e;
    }

    // ---- .npy ----------------------------------------------------------------------------------------------

    /// <summary>A .npy file: magic, version, header length, the dictionary padded with spaces to 64 bytes, data.</summary>
    private static byte[] Npy(string descr, long[] shape, byte[] data, int version = 1, bool fortran = false)
    {
        string tuple = shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
        string dict = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {tuple}, }}";
        int prefix = 6 + 2 + (version == 1 ? 2 : 4);
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        var header = Encoding.Latin1.GetBytes(dict + new string(' ', total - prefix - dict.Length - 1) + "\n");
        var s = new MemoryStream();
        s.Write(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)version, 0 });
        if (version == 1) s.Write(BitConverter.GetBytes((ushort)header.Length));
        else s.Write(BitConverter.GetBytes((uint)header.Length));
        s.Write(header);
        s.Write(data);
        return s.ToArray();
    }

    private static byte[] Floats(IEnumerable<float> v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>Values 0, 1, 2, ... of one Small sample in NCHW order ([C,H,W]) and the NHWC input they are.</summary>
    private static (float[] Nchw, float[] Nhwc) Numbered(int offset = 0)
    {
        var s = Small;
        var nchw = Enumerable.Range(offset, s.Elements).Select(i => (float)i).ToArray();
        var nhwc = new float[s.Elements];
        for (int c = 0; c < s.C; c++)
            for (int y = 0; y < s.H; y++)
                for (int x = 0; x < s.W; x++)
                    nhwc[(y * s.W + x) * s.C + c] = nchw[(c * s.H + y) * s.W + x];
        return (nchw, nhwc);
    }

    [TestMethod]
    public void Npy_Float32_OneSampleInNchw_IsTransposedToNhwc_AndUsedAsItIs()
    {
        var (nchw, nhwc) = Numbered();
        var path = NewFile("one.npy", Npy("<f4", new long[] { 4, 2, 3 }, Floats(nchw)));
        var samples = NpyLoader.Load(path, Target(Small));
        Assert.AreEqual(1, samples.Count);
        CollectionAssert.AreEqual(nhwc, samples[0].Input); // no Mean/Scale
        Assert.AreEqual("one.npy", samples[0].Name);
        Assert.IsNull(samples[0].Index);
    }

    [TestMethod]
    public void Npy_Nhwc_IsTakenAsItIs()
    {
        var (_, nhwc) = Numbered();
        var path = NewFile("nhwc.npy", Npy("<f4", new long[] { 1, 2, 3, 4 }, Floats(nhwc)));
        var samples = NpyLoader.Load(path, Target(Small, InputLayout.Nhwc));
        CollectionAssert.AreEqual(nhwc, samples.Single().Input);
        Assert.AreEqual("nhwc.npy[0]", samples[0].Name);
    }

    [TestMethod]
    [DataRow("<f4")]
    [DataRow(">f4")]
    [DataRow("<f8")]
    [DataRow(">f8")]
    [DataRow("|u1")]
    [DataRow("|i1")]
    public void Npy_EachDtype_BatchOfThree(string descr)
    {
        var values = Enumerable.Range(0, 3 * Small.Elements).Select(i => descr.EndsWith("i1") ? (i % 256) - 128 : descr.EndsWith("u1") ? i % 256 : i * 0.25 - 20).ToArray();
        byte[] data = descr switch
        {
            "<f4" => values.SelectMany(v => BitConverter.GetBytes((float)v)).ToArray(),
            ">f4" => values.SelectMany(v => { var b = new byte[4]; BinaryPrimitives.WriteSingleBigEndian(b, (float)v); return b; }).ToArray(),
            "<f8" => values.SelectMany(v => BitConverter.GetBytes(v)).ToArray(),
            ">f8" => values.SelectMany(v => { var b = new byte[8]; BinaryPrimitives.WriteDoubleBigEndian(b, v); return b; }).ToArray(),
            "|u1" => values.Select(v => (byte)v).ToArray(),
            _ => values.Select(v => (byte)(sbyte)v).ToArray(),
        };
        var path = NewFile("batch.npy", Npy(descr, new long[] { 3, 2, 3, 4 }, data));
        var samples = NpyLoader.Load(path, Target(Small, InputLayout.Nhwc));
        Assert.AreEqual(3, samples.Count);
        for (int n = 0; n < 3; n++)
        {
            Assert.AreEqual($"batch.npy[{n}]", samples[n].Name);
            CollectionAssert.AreEqual(values.Skip(n * Small.Elements).Take(Small.Elements).Select(v => (float)v).ToArray(), samples[n].Input, descr);
        }
        Assert.AreEqual(2, NpyLoader.Load(path, Target(Small, InputLayout.Nhwc), max: 2).Count);
    }

    [TestMethod]
    [DataRow(2)]
    [DataRow(3)]
    public void Npy_Versions2And3(int version)
    {
        var (nchw, nhwc) = Numbered();
        var path = NewFile($"v{version}.npy", Npy("<f4", new long[] { 4, 2, 3 }, Floats(nchw), version));
        CollectionAssert.AreEqual(nhwc, NpyLoader.Load(path, Target(Small)).Single().Input);
    }

    [TestMethod]
    public void Npy_Gzip_IsDecompressed()
    {
        var (nchw, nhwc) = Numbered();
        var path = NewFile("sample.npy.gz", Gzip(Npy("<f4", new long[] { 4, 2, 3 }, Floats(nchw))));
        Assert.AreEqual(CalibrationFormat.Npy, CalibrationData.Detect(path));
        CollectionAssert.AreEqual(nhwc, CalibrationData.LoadFile(path, Target(Small)).Single().Input);
    }

    [TestMethod]
    public void Npy_WrongShape_IsMCU2004_NamingBothShapes()
    {
        var path = NewFile("wrong.npy", Npy("<f4", new long[] { 5, 4, 3, 2 }, Floats(new float[120])));
        var e = Refused(() => NpyLoader.Load(path, Target(Small)), ErrorCodes.CalibrationShapeMismatch);
        StringAssert.Contains(e.Message, "[5,4,3,2]");
        StringAssert.Contains(e.Message, "[4,2,3]");
        StringAssert.Contains(e.Message, "InputLayout=NCHW");
        Assert.AreEqual(path, e.Diagnostic.File);
    }

    [TestMethod]
    public void Npy_NhwcDataWithNchwLayout_SuggestsInputLayout()
    {
        var path = NewFile("nhwc.npy", Npy("<f4", new long[] { 2, 2, 3, 4 }, Floats(new float[48])));
        var e = Refused(() => NpyLoader.Load(path, Target(Small)), ErrorCodes.CalibrationShapeMismatch);
        StringAssert.Contains(e.Message, "InputLayout=\"NHWC\"");
    }

    [TestMethod]
    public void Npy_GrayImagesWithoutChannelAxis_SayHowToFixIt()
    {
        var path = NewFile("digits.npy", Npy("|u1", new long[] { 7, 28, 28 }, new byte[7 * 784]));
        var e = Refused(() => NpyLoader.Load(path, Target(new TensorShape(28, 28, 1))), ErrorCodes.CalibrationShapeMismatch);
        StringAssert.Contains(e.Message, "[7,28,28]");
        StringAssert.Contains(e.Message, "[1,28,28]");
        StringAssert.Contains(e.Message, "[7,1,28,28]");
    }

    [TestMethod]
    public void Npy_VectorInput_TakesKOrNByK()
    {
        var target = new CalibrationTarget(new TensorShape(1, 1, 5), Raw, InputLayout.Nchw, OnnxRank: 2);
        var one = NewFile("v.npy", Npy("<f4", new long[] { 5 }, Floats(new[] { 1f, 2, 3, 4, 5 })));
        CollectionAssert.AreEqual(new[] { 1f, 2, 3, 4, 5 }, NpyLoader.Load(one, target).Single().Input);
        var two = NewFile("vv.npy", Npy("<f4", new long[] { 2, 5 }, Floats(Enumerable.Range(0, 10).Select(i => (float)i))));
        Assert.AreEqual(2, NpyLoader.Load(two, target).Count);
        var bad = NewFile("bad.npy", Npy("<f4", new long[] { 6 }, Floats(new float[6])));
        StringAssert.Contains(Refused(() => NpyLoader.Load(bad, target), ErrorCodes.CalibrationShapeMismatch).Message, "[5]");
    }

    [TestMethod]
    public void Npy_BadFiles_AreMCU2002()
    {
        var good = Npy("<f4", new long[] { 4, 2, 3 }, Floats(new float[24]));
        var cases = new (string Name, byte[] Content, string Says)[]
        {
            ("empty.npy", Array.Empty<byte>(), "magic"),
            ("garbage.npy", Encoding.ASCII.GetBytes("this is not a numpy file at all, just text"), "magic"),
            ("truncated.npy", good[..^10], "truncated"),
            ("trailing.npy", good.Concat(new byte[4]).ToArray(), "bytes after"),
            ("int32.npy", Npy("<i4", new long[] { 4, 2, 3 }, new byte[96]), "'<i4'"),
            ("fortran.npy", Npy("<f4", new long[] { 4, 2, 3 }, Floats(new float[24]), fortran: true), "Fortran"),
            ("version9.npy", good.Select((b, i) => i == 6 ? (byte)9 : b).ToArray(), "version 9"),
            ("nan.npy", Npy("<f4", new long[] { 4, 2, 3 }, Floats(Enumerable.Repeat(float.NaN, 24))), "not a finite"),
            ("header.npy", Encoding.Latin1.GetBytes("\u0093NUMPY\u0001\u0000\u0010\u0000{'a': 1}       \n"), "dictionary"),
        };
        foreach (var (name, content, says) in cases)
        {
            var path = NewFile(name, content);
            var e = Refused(() => CalibrationData.LoadFile(path, Target(Small)), ErrorCodes.CalibrationUnreadable);
            StringAssert.Contains(e.Message, says, name);
            StringAssert.Contains(e.Message, path, name);
        }
    }

    // ---- .pb (ONNX TensorProto) ----------------------------------------------------------------------------

    private static string MnistDataSet(int i) => Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", $"test_data_set_{i}", "input_0.pb");

    [TestMethod]
    public void Pb_OnnxTestDataSetInput_IsOneSample()
    {
        var samples = CalibrationData.LoadSamples(new[] { MnistDataSet(0) }, Target(new TensorShape(28, 28, 1)));
        Assert.AreEqual(1, samples.Count); // dims [1,1,28,28]: a batch of one
        CollectionAssert.AreEqual(MnistTests.DataSet(0).Input, samples[0].Input);
        Assert.AreEqual("input_0.pb[0]", samples[0].Name);
    }

    private static byte[] Tensor(DataType type, long[] dims, byte[] raw)
    {
        var t = new TensorProto { Name = "x", DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        t.Dims.AddRange(dims);
        return t.ToByteArray();
    }

    [TestMethod]
    public void Pb_FloatBatch_Nchw_AndUint8_AndTypedFields()
    {
        var (a, aNhwc) = Numbered();
        var (b, bNhwc) = Numbered(100);
        var batch = NewFile("batch.pb", Tensor(DataType.Float, new long[] { 2, 4, 2, 3 }, Floats(a.Concat(b))));
        var samples = TensorProtoLoader.Load(batch, Target(Small));
        Assert.AreEqual(2, samples.Count);
        CollectionAssert.AreEqual(aNhwc, samples[0].Input);
        CollectionAssert.AreEqual(bNhwc, samples[1].Input);
        Assert.AreEqual(1, TensorProtoLoader.Load(batch, Target(Small), max: 1).Count);

        var bytes = NewFile("u8.pb", Tensor(DataType.Uint8, new long[] { 2, 3, 4 }, Enumerable.Range(200, 24).Select(i => (byte)i).ToArray()));
        CollectionAssert.AreEqual(Enumerable.Range(200, 24).Select(i => (float)i).ToArray(), TensorProtoLoader.Load(bytes, Target(Small, InputLayout.Nhwc)).Single().Input);

        var typed = new TensorProto { DataType = (int)DataType.Float };
        typed.Dims.AddRange(new long[] { 2, 3, 4 });
        typed.FloatData.AddRange(aNhwc);
        var typedPath = NewFile("typed.pb", typed.ToByteArray());
        CollectionAssert.AreEqual(aNhwc, TensorProtoLoader.Load(typedPath, Target(Small, InputLayout.Nhwc)).Single().Input);
    }

    [TestMethod]
    public void Pb_WrongShape_IsMCU2004()
    {
        var e = Refused(() => TensorProtoLoader.Load(MnistDataSet(1), Target(new TensorShape(32, 32, 1))), ErrorCodes.CalibrationShapeMismatch);
        StringAssert.Contains(e.Message, "[1,1,28,28]");
        StringAssert.Contains(e.Message, "[1,32,32]");
    }

    [TestMethod]
    public void Pb_BadFiles_AreMCU2002()
    {
        var cases = new (string Name, byte[] Content, string Says)[]
        {
            ("empty.pb", Array.Empty<byte>(), "no element type"),
            ("garbage.pb", Enumerable.Range(0, 64).Select(i => (byte)(i * 37 + 11)).ToArray(), "TensorProto"),
            ("int32.pb", Tensor(DataType.Int32, new long[] { 2, 3, 4 }, new byte[96]), "Int32"),
            ("short.pb", Tensor(DataType.Float, new long[] { 2, 3, 4 }, new byte[95]), "95 bytes"),
            ("inf.pb", Tensor(DataType.Float, new long[] { 2, 3, 4 }, Floats(Enumerable.Repeat(float.PositiveInfinity, 24))), "not a finite"),
        };
        foreach (var (name, content, says) in cases)
        {
            var path = NewFile(name, content);
            var e = Refused(() => CalibrationData.LoadFile(path, Target(Small, InputLayout.Nhwc)), ErrorCodes.CalibrationUnreadable);
            StringAssert.Contains(e.Message, says, name);
        }
    }

    // ---- IDX -----------------------------------------------------------------------------------------------

    private static byte[] Idx(int[] dims, byte[] data, byte type = 0x08)
    {
        var s = new MemoryStream();
        s.Write(new byte[] { 0, 0, type, (byte)dims.Length });
        foreach (var d in dims)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(b, d);
            s.Write(b);
        }
        s.Write(data);
        return s.ToArray();
    }

    private static byte[] Gzip(byte[] data)
    {
        var s = new MemoryStream();
        using (var gz = new GZipStream(s, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(data);
        return s.ToArray();
    }

    private static byte[] Digits(int n, int h = 28, int w = 28) => Enumerable.Range(0, n * h * w).Select(i => (byte)(i * 7 % 256)).ToArray();

    [TestMethod]
    public void Idx_PlainAndGzip_GiveTheSameSamples_InFileOrder()
    {
        var pixels = Digits(3);
        var plain = NewFile("images-ubyte", Idx(new[] { 3, 28, 28 }, pixels)); // no extension: told by its header
        var gzip = NewFile("images.gz", Gzip(Idx(new[] { 3, 28, 28 }, pixels)));
        Assert.AreEqual(CalibrationFormat.Idx, CalibrationData.Detect(plain));
        Assert.AreEqual(CalibrationFormat.Idx, CalibrationData.Detect(gzip));
        var shape = new TensorShape(28, 28, 1);
        var a = CalibrationData.LoadFile(plain, Target(shape));
        var b = CalibrationData.LoadFile(gzip, Target(shape));
        Assert.AreEqual(3, a.Count);
        for (int i = 0; i < 3; i++)
        {
            CollectionAssert.AreEqual(pixels.Skip(i * 784).Take(784).Select(p => (float)p).ToArray(), a[i].Input, $"digit {i}");
            CollectionAssert.AreEqual(a[i].Input, b[i].Input, $"digit {i}");
            Assert.AreEqual($"images.gz[{i}]", b[i].Name);
        }
        // Mean and Scale apply to IDX images like to pictures
        var scaled = CalibrationData.LoadFile(gzip, Target(shape, pre: new Preprocessing { Channels = ChannelOrder.Gray, Mean = new[] { 127.5f }, Scale = new[] { 1 / 127.5f } }));
        Assert.AreEqual((pixels[5] - 127.5f) * (1 / 127.5f), scaled[0].Input[5]);
    }

    [TestMethod]
    public void Idx_TheCommittedMnistDigits_GzipEqualsPlain()
    {
        var gz = MnistAccuracyTests.DigitsFile;
        var plain = NewFile("digits-images-idx3-ubyte", Decompress(gz));
        var shape = new TensorShape(28, 28, 1);
        var a = CalibrationData.LoadFile(gz, Target(shape), max: 50);
        var b = CalibrationData.LoadFile(plain, Target(shape), max: 50);
        Assert.AreEqual(50, a.Count);
        for (int i = 0; i < 50; i++) CollectionAssert.AreEqual(a[i].Input, b[i].Input);
        var labels = IdxLoader.Read(MnistAccuracyTests.LabelsFile);
        CollectionAssert.AreEqual(new[] { 10_000 }, labels.Dims);
        CollectionAssert.AreEqual(new byte[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, labels.Data[..10]); // the classes are interleaved
    }

    private static byte[] Decompress(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        var s = new MemoryStream();
        gz.CopyTo(s);
        return s.ToArray();
    }

    [TestMethod]
    public void Idx_OtherSize_IsResized_AndRgbBecomesGray()
    {
        var pixels = Digits(2);
        var path = NewFile("d.idx", Idx(new[] { 2, 28, 28 }, pixels));
        var half = CalibrationData.LoadFile(path, Target(new TensorShape(14, 14, 1)));
        CollectionAssert.AreEqual(ImagePreprocessing.Resize(pixels[784..1568], 28, 28, 1, 14, 14, ResizeMode.Stretch, Interpolation.Bilinear), half[1].Input);

        // [N,H,W,3] with ChannelOrder Gray: the decoder's luminance rule; with RGB: as stored; BGR: swapped
        var rgb = new byte[] { 10, 20, 30, 200, 100, 50 }; // one image of 1x2 pixels
        var rgbPath = NewFile("rgb.idx", Idx(new[] { 1, 1, 2, 3 }, rgb));
        var gray = CalibrationData.LoadFile(rgbPath, Target(new TensorShape(1, 2, 1))).Single().Input;
        CollectionAssert.AreEqual(new[] { (float)((10 * 77 + 20 * 150 + 30 * 29) >> 8), (float)((200 * 77 + 100 * 150 + 50 * 29) >> 8) }, gray);
        var asRgb = CalibrationData.LoadFile(rgbPath, Target(new TensorShape(1, 2, 3), pre: new Preprocessing { Channels = ChannelOrder.Rgb, Mean = new[] { 0f }, Scale = new[] { 1f } })).Single().Input;
        CollectionAssert.AreEqual(rgb.Select(b => (float)b).ToArray(), asRgb);
        var asBgr = CalibrationData.LoadFile(rgbPath, Target(new TensorShape(1, 2, 3), pre: new Preprocessing { Channels = ChannelOrder.Bgr, Mean = new[] { 0f }, Scale = new[] { 1f } })).Single().Input;
        CollectionAssert.AreEqual(new[] { 30f, 20, 10, 50, 100, 200 }, asBgr);
    }

    [TestMethod]
    public void Idx_Labels_AreRefusedAsCalibration_WithMCU2004()
    {
        var e = Refused(() => CalibrationData.LoadFile(MnistAccuracyTests.LabelsFile, Target(new TensorShape(28, 28, 1))), ErrorCodes.CalibrationShapeMismatch);
        StringAssert.Contains(e.Message, "[10000]");
        StringAssert.Contains(e.Message, "labels");
    }

    [TestMethod]
    public void Idx_BadFiles_AreMCU2002()
    {
        var good = Idx(new[] { 2, 4, 4 }, new byte[32]);
        var cases = new (string Name, byte[] Content, string Says)[]
        {
            ("truncated-idx3-ubyte", good[..^3], "truncated"),
            ("trailing-idx3-ubyte", good.Concat(new byte[] { 1 }).ToArray(), "bytes after"),
            ("float-idx3-ubyte", Idx(new[] { 2, 4, 4 }, new byte[128], type: 0x0D), "float32"),
            ("garbage-idx3-ubyte", Encoding.ASCII.GetBytes("definitely not idx"), "not an IDX file"),
            ("empty-idx3-ubyte", Array.Empty<byte>(), "not an IDX file"),
            ("broken.gz", new byte[] { 0x1F, 0x8B, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, "gzip"),
            ("notgzip.gz", Encoding.ASCII.GetBytes("plain text, not gzip"), "not an IDX file"),
            ("shortgz.gz", Gzip(good)[..^12], "cannot read"),
            ("gzgarbage.gz", Gzip(Encoding.ASCII.GetBytes("plain text inside gzip")), "inside the gzip data"),
        };
        foreach (var (name, content, says) in cases)
        {
            var path = NewFile(name, content);
            var e = Refused(() => CalibrationData.LoadFile(path, Target(new TensorShape(4, 4, 1))), ErrorCodes.CalibrationUnreadable);
            StringAssert.Contains(e.Message, says, name);
        }
    }

    // ---- pictures and preprocessing ------------------------------------------------------------------------

    [TestMethod]
    public void Images_GarbageOrEmpty_AreMCU2002()
    {
        foreach (var (name, content) in new[] { ("garbage.png", Encoding.ASCII.GetBytes("not a png, not anything")), ("empty.jpg", Array.Empty<byte>()) })
        {
            var path = NewFile(name, content);
            Assert.AreEqual(CalibrationFormat.Image, CalibrationData.Detect(path));
            StringAssert.Contains(Refused(() => CalibrationData.LoadFile(path, Target(new TensorShape(8, 8, 3), pre: new Preprocessing())), ErrorCodes.CalibrationUnreadable).Message, name);
        }
        var truncated = NewFile("truncated.png", File.ReadAllBytes(TestData.VwwImages.First(i => i.Path.EndsWith(".png")).Path)[..100]);
        Refused(() => CalibrationData.LoadFile(truncated, Target(new TensorShape(8, 8, 3), pre: new Preprocessing())), ErrorCodes.CalibrationUnreadable);
    }

    [TestMethod]
    public void Images_DefaultPreprocessing_IsTheBilinearStretchOfBefore()
    {
        var shape = new TensorShape(128, 128, 3);
        foreach (var (path, _) in TestData.VwwImages)
        {
            var input = ImageLoader.Load(path, new Preprocessing(), shape);
            CollectionAssert.AreEqual(input, CalibrationData.LoadFile(path, Target(shape, pre: new Preprocessing())).Single().Input, path);
        }
        var jpeg = TestData.VwwImages.Single(i => i.Path.EndsWith(".jpg")).Path; // 1000x726
        var stretch = ImageLoader.Load(jpeg, new Preprocessing(), shape);
        var crop = ImageLoader.Load(jpeg, new Preprocessing { Resize = ResizeMode.CenterCrop }, shape);
        var nearest = ImageLoader.Load(jpeg, new Preprocessing { Interpolation = Interpolation.Nearest }, shape);
        CollectionAssert.AreNotEqual(stretch, crop);
        CollectionAssert.AreNotEqual(stretch, nearest);
    }

    [TestMethod]
    public void Resize_CenterCrop_AndNearest()
    {
        // a 4 x 8 image (H x W) whose pixel value is its column
        var wide = Enumerable.Range(0, 32).Select(i => (byte)(i % 8 * 10)).ToArray();
        float[] Columns(float[] r, int w) => Enumerable.Range(0, w).Select(x => r[x]).ToArray();

        // CenterCrop to 4x4: the height fits, the middle columns 2..5 are kept
        CollectionAssert.AreEqual(new[] { 20f, 30, 40, 50 }, Columns(ImagePreprocessing.Resize(wide, 8, 4, 1, 4, 4, ResizeMode.CenterCrop, Interpolation.Bilinear), 4));
        CollectionAssert.AreEqual(new[] { 20f, 30, 40, 50 }, Columns(ImagePreprocessing.Resize(wide, 8, 4, 1, 4, 4, ResizeMode.CenterCrop, Interpolation.Nearest), 4));
        // Stretch to 4x4: half-pixel centres; nearest takes columns 1, 3, 5, 7; bilinear averages pairs
        CollectionAssert.AreEqual(new[] { 10f, 30, 50, 70 }, Columns(ImagePreprocessing.Resize(wide, 8, 4, 1, 4, 4, ResizeMode.Stretch, Interpolation.Nearest), 4));
        CollectionAssert.AreEqual(new[] { 5f, 25, 45, 65 }, Columns(ImagePreprocessing.Resize(wide, 8, 4, 1, 4, 4, ResizeMode.Stretch, Interpolation.Bilinear), 4));
        // CenterCrop to 2x2 scales by 1/2 (the shorter side, 4, becomes 2) and keeps the middle 4 columns
        CollectionAssert.AreEqual(new[] { 25f, 45 }, Columns(ImagePreprocessing.Resize(wide, 8, 4, 1, 2, 2, ResizeMode.CenterCrop, Interpolation.Bilinear), 2));
        // a tall image: rows are cropped
        var tall = Enumerable.Range(0, 32).Select(i => (byte)(i / 4 * 10)).ToArray(); // 8 x 4, value = row
        var rows = ImagePreprocessing.Resize(tall, 4, 8, 1, 4, 4, ResizeMode.CenterCrop, Interpolation.Nearest);
        CollectionAssert.AreEqual(new[] { 20f, 30, 40, 50 }, Enumerable.Range(0, 4).Select(y => rows[y * 4]).ToArray());
        // same size: the identity in every mode
        foreach (var mode in new[] { ResizeMode.Stretch, ResizeMode.CenterCrop })
            foreach (var interpolation in new[] { Interpolation.Bilinear, Interpolation.Nearest })
                CollectionAssert.AreEqual(wide.Select(b => (float)b).ToArray(), ImagePreprocessing.Resize(wide, 8, 4, 1, 8, 4, mode, interpolation));
    }

    // ---- the front -----------------------------------------------------------------------------------------

    [TestMethod]
    public void Front_SortsFilesByPath_SamplesInFileOrder_AndStopsAtTheLimit()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_dir, "front-" + Guid.NewGuid().ToString("N"))).FullName;
        var shape = new TensorShape(2, 2, 1);
        File.WriteAllBytes(Path.Combine(dir, "b.idx"), Idx(new[] { 3, 2, 2 }, Enumerable.Range(10, 12).Select(i => (byte)i).ToArray()));
        File.WriteAllBytes(Path.Combine(dir, "a.npy"), Npy("<f4", new long[] { 2, 1, 2, 2 }, Floats(Enumerable.Range(100, 8).Select(i => (float)i))));
        File.WriteAllBytes(Path.Combine(dir, "c.pb"), Tensor(DataType.Float, new long[] { 1, 2, 2 }, Floats(new[] { -1f, -2, -3, -4 })));
        var files = new[] { "c.pb", "b.idx", "a.npy" }.Select(f => Path.Combine(dir, f)).ToArray();

        var all = CalibrationData.LoadSamples(files, Target(shape));
        CollectionAssert.AreEqual(new[] { "a.npy[0]", "a.npy[1]", "b.idx[0]", "b.idx[1]", "b.idx[2]", "c.pb" }, all.Select(s => s.Name).ToArray());
        CollectionAssert.AreEqual(new[] { 104f, 105, 106, 107 }, all[1].Input);
        CollectionAssert.AreEqual(new[] { 14f, 15, 16, 17 }, all[3].Input);

        var four = CalibrationData.Load(files.Reverse(), Raw, shape, limit: 4);
        Assert.AreEqual(4, four.Count);
        CollectionAssert.AreEqual(all[3].Input, four[3]);
        Assert.AreEqual(1, CalibrationData.Load(files, Raw, shape, limit: 1).Count);
        Assert.AreEqual(0, CalibrationData.Load(Array.Empty<string>(), Raw, shape).Count);
    }

    [TestMethod]
    public void Front_FilesWithoutSamples_AreMCU2001_AndAMissingFileMCU2002()
    {
        var empty = NewFile("none.npy", Npy("<f4", new long[] { 0, 1, 2, 2 }, Array.Empty<byte>()));
        var emptyIdx = NewFile("none-idx3-ubyte", Idx(new[] { 0, 2, 2 }, Array.Empty<byte>()));
        var e = Refused(() => CalibrationData.Load(new[] { empty, emptyIdx }, Raw, new TensorShape(2, 2, 1)), ErrorCodes.CalibrationMissing);
        StringAssert.Contains(e.Message, "no samples");
        var missing = Path.Combine(_dir, "no-such-file.png");
        Refused(() => CalibrationData.Load(new[] { missing }, Raw, new TensorShape(2, 2, 1)), ErrorCodes.CalibrationUnreadable);
    }

    [TestMethod]
    public void Front_ChannelOrderThatDoesNotFitTheModel_IsMCU4001()
    {
        var path = NewFile("d.idx", Idx(new[] { 1, 2, 2 }, new byte[4]));
        Refused(() => CalibrationData.Load(new[] { path }, new Preprocessing(), new TensorShape(2, 2, 1)), ErrorCodes.BadMetadata);
    }
}
