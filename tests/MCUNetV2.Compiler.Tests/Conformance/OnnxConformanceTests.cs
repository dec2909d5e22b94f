using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Onnx;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The ONNX backend conformance cases of the supported operators (tests/data/onnx-tests) on the C# float executor.
/// A case either imports and matches its expected outputs, or is refused with a coded error (counted as
/// unsupported). A wrong number or a crash fails the test.
/// </summary>
[TestClass]
public sealed class OnnxConformanceTests
{
    private static string Root => Path.Combine(TestData.RepoRoot, "tests", "data", "onnx-tests");

    private static float[] ReadTensor(string path, out long[] dims)
    {
        var t = ConstantTensor.Decode(Onnx.Proto.TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)), path);
        dims = t.Dims;
        return t.AsFloats();
    }

    /// <summary>ONNX data to our storage (rank 4 [1,C,H,W] and rank 3 [C,H,W] as HxWxC; rank 2 [M,K] and rank 1 [K] as they are); null if batch != 1.</summary>
    private static float[]? ToNhwc(float[] data, long[] dims)
    {
        return dims.Length switch
        {
            4 when dims[0] == 1 => FloatExecutor.NchwToNhwc(data, new Graph.TensorShape((int)dims[2], (int)dims[3], (int)dims[1])),
            3 => FloatExecutor.NchwToNhwc(data, new Graph.TensorShape((int)dims[1], (int)dims[2], (int)dims[0])),
            2 => data,
            1 => data,
            _ => null,
        };
    }

    private enum Outcome { Passed, Unsupported, Failed }

    /// <summary>
    /// Node tests pass weights (and Clip bounds) as graph inputs; the compiler takes them as constants. This writes a
    /// copy of the model in which every input but the first is an initializer holding the data set's value.
    /// </summary>
    private static string FreezeWeightInputs(string model, string set, string work)
    {
        var proto = Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
        var inputs = proto.Graph.Input.Where(i => proto.Graph.Initializer.All(t => t.Name != i.Name)).ToList();
        for (int i = 1; i < inputs.Count; i++)
        {
            var t = Onnx.Proto.TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(set, $"input_{i}.pb")));
            t.Name = inputs[i].Name;
            proto.Graph.Initializer.Add(t);
            proto.Graph.Input.Remove(inputs[i]);
        }
        var path = Path.Combine(work, Path.GetFileName(Path.GetDirectoryName(model)!) + "-" + Path.GetFileName(set) + ".onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        return path;
    }

    /// <summary>
    /// The compiler compiles batch 1. A case whose inputs carry a batch B &gt; 1 is run sample by sample on a copy of the
    /// model declared with batch 1 (every supported operator treats samples independently); null when not applicable.
    /// </summary>
    private static string? WithBatchOne(string model, string work)
    {
        var proto = Onnx.Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
        bool changed = false;
        foreach (var vi in proto.Graph.Input.Concat(proto.Graph.Output))
        {
            var dims = vi.Type?.TensorType?.Shape?.Dim;
            if (dims is { Count: 2 or 4 } && dims[0].DimValue > 1)
            {
                dims[0].DimValue = 1;
                changed = true;
            }
        }
        if (!changed) return null;
        var path = Path.Combine(work, "batch1-" + Path.GetFileName(Path.GetDirectoryName(model)!) + ".onnx");
        File.WriteAllBytes(path, Google.Protobuf.MessageExtensions.ToByteArray(proto));
        return path;
    }

    private static (Outcome, string) RunCase(string dir)
    {
        var first = RunCaseAsGiven(dir);
        if (first.Item1 != Outcome.Unsupported || !first.Item2.Contains("batch 1 is compiled")) return first;
        var work = Directory.CreateTempSubdirectory("mcunet-conformance-").FullName;
        try
        {
            var model = WithBatchOne(Path.Combine(dir, "model.onnx"), work);
            if (model == null) return first;
            var sets = Directory.GetDirectories(dir, "test_data_set_*").OrderBy(d => d, StringComparer.Ordinal).ToList();
            Graph.ModelGraph? shared;
            try { shared = OnnxImporter.Load(model); }
            catch (CompilerException e) when (NeedsFrozenWeights(e)) { shared = null; }
            catch (CompilerException e) { return (Outcome.Unsupported, $"{e.Diagnostic.Code} {e.Diagnostic.Message} (batch split)"); }
            foreach (var set in sets)
            {
                Graph.ModelGraph g;
                try { g = shared ?? OnnxImporter.Load(FreezeWeightInputs(model, set, work)); }
                catch (CompilerException e) { return (Outcome.Unsupported, $"{e.Diagnostic.Code} {e.Diagnostic.Message} (batch split, weights given as constants)"); }
                var ins = Enumerable.Range(0, g.Inputs.Count).Select(i => ReadTensor(Path.Combine(set, $"input_{i}.pb"), out var d) is var x ? (x, d) : default).ToList();
                var exp = ReadTensor(Path.Combine(set, "output_0.pb"), out var outDims);
                long batch = ins[0].d[0];
                if (ins.Any(i => i.d.Length is not (2 or 4) || i.d[0] != batch) || outDims.Length is not (2 or 4) || outDims[0] != batch)
                    return (Outcome.Unsupported, "inputs and output do not share one batch dimension");
                for (int b = 0; b < batch; b++)
                {
                    var sample = ins.Select(i => ToNhwc(Slice(i.x, i.d, b, out var sd), sd)!).ToList();
                    var expected = ToNhwc(Slice(exp, outDims, b, out var od), od)!;
                    var r = Compare(FloatExecutor.Run(g, sample), expected, $"{Path.GetFileName(set)} sample {b}", od);
                    if (r.Item1 != Outcome.Passed) return r;
                }
            }
            return (Outcome.Passed, "");
        }
        finally { Directory.Delete(work, true); }
    }

    private static float[] Slice(float[] data, long[] dims, int b, out long[] sliceDims)
    {
        sliceDims = dims.ToArray();
        sliceDims[0] = 1;
        int per = (int)(data.Length / dims[0]);
        return data.Skip(b * per).Take(per).ToArray();
    }

    private static (Outcome, string) Compare(float[] actual, float[] expected, string what, long[] outDims)
    {
        if (actual.Length != expected.Length)
            return (Outcome.Failed, $"{what}: {actual.Length} values, expected {expected.Length} ([{string.Join(",", outDims)}])");
        for (int k = 0; k < expected.Length; k++)
        {
            double tol = 1e-6 + 1e-3 * Math.Abs(expected[k]);
            if (!(Math.Abs(actual[k] - expected[k]) <= tol) && !(float.IsNaN(expected[k]) && float.IsNaN(actual[k])))
                return (Outcome.Failed, $"{what}: value {k} is {actual[k]}, expected {expected[k]}");
        }
        return (Outcome.Passed, "");
    }

    /// <summary>The import failed because the node test passes weights (or int64 shapes, scalars) as graph inputs.</summary>
    private static bool NeedsFrozenWeights(CompilerException e) =>
        e.Diagnostic.Message.Contains("must be a constant") || e.Diagnostic.Message.Contains("has rank 0") || e.Diagnostic.Message.Contains("has element type Int64");

    private static (Outcome, string) RunCaseAsGiven(string dir)
    {
        var model = Path.Combine(dir, "model.onnx");
        var sets = Directory.GetDirectories(dir, "test_data_set_*").OrderBy(d => d, StringComparer.Ordinal).ToList();
        try
        {
            return RunCase(OnnxImporter.Load(model), sets, frozen: false);
        }
        catch (CompilerException e) when (NeedsFrozenWeights(e))
        {
            var work = Directory.CreateTempSubdirectory("mcunet-conformance-").FullName;
            try
            {
                foreach (var set in sets)
                {
                    var r = RunCase(OnnxImporter.Load(FreezeWeightInputs(model, set, work)), new[] { set }, frozen: true);
                    if (r.Item1 != Outcome.Passed) return r;
                }
                return (Outcome.Passed, "");
            }
            catch (CompilerException e2) { return (Outcome.Unsupported, $"{e2.Diagnostic.Code} {e2.Diagnostic.Message} (weights given as constants)"); }
            finally { Directory.Delete(work, true); }
        }
        catch (CompilerException e) { return (Outcome.Unsupported, $"{e.Diagnostic.Code} {e.Diagnostic.Message}"); }
    }

    private static (Outcome, string) RunCase(Graph.ModelGraph g, IReadOnlyList<string> sets, bool frozen)
    {
        foreach (var set in sets)
        {
            var inputs = new List<float[]>();
            for (int i = 0; i < g.Inputs.Count; i++)
            {
                var data = ToNhwc(ReadTensor(Path.Combine(set, $"input_{i}.pb"), out var dims), dims);
                if (data == null) return (Outcome.Unsupported, $"input {i} has a batch other than 1");
                inputs.Add(data);
            }
            var outData = ReadTensor(Path.Combine(set, "output_0.pb"), out var outDims);
            // an output no map can hold (rank 5, a batch) is returned in ONNX order
            var expected = g.OnnxOutputDims != null ? outData : ToNhwc(outData, outDims);
            if (expected == null) return (Outcome.Unsupported, "output has a batch other than 1");
            var r = Compare(FloatExecutor.Run(g, inputs), expected, Path.GetFileName(set), outDims);
            if (r.Item1 != Outcome.Passed) return r;
        }
        return (Outcome.Passed, "");
    }

    [TestMethod]
    public void SupportedOperators_MatchTheirConformanceCases()
    {
        var rows = File.ReadAllLines(Path.Combine(Root, "INDEX.tsv")).Select(l => l.Split('\t')).ToList();
        var results = new List<(string Case, string[] Ops, Outcome Outcome, string Detail)>();
        foreach (var row in rows)
        {
            var ops = row[1].Split(',').Select(o => o.Split(':')[0]).Distinct().ToArray();
            (Outcome, string) r;
            try { r = RunCase(Path.Combine(Root, row[0])); }
            catch (Exception e) { r = (Outcome.Failed, $"{e.GetType().Name}: {e.Message}"); }
            results.Add((row[0], ops, r.Item1, r.Item2));
        }
        var table = results.SelectMany(r => r.Ops.Where(o => o != "Constant").DefaultIfEmpty("Constant").Select(o => (Op: o, r.Outcome)))
            .GroupBy(x => x.Op).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"| {g.Key} | {g.Count(x => x.Outcome == Outcome.Passed)} | {g.Count(x => x.Outcome == Outcome.Unsupported)} | {g.Count(x => x.Outcome == Outcome.Failed)} |");
        Console.WriteLine("| operator | passed | refused (coded error) | failed |\n|---|---|---|---|\n" + string.Join("\n", table));
        Console.WriteLine($"\ncases: {results.Count(r => r.Outcome == Outcome.Passed)} passed, {results.Count(r => r.Outcome == Outcome.Unsupported)} refused, {results.Count(r => r.Outcome == Outcome.Failed)} failed");
        foreach (var r in results.Where(r => r.Outcome != Outcome.Passed))
            Console.WriteLine($"{r.Outcome,-11} {r.Case}: {r.Detail}");
        var failed = results.Where(r => r.Outcome == Outcome.Failed).ToList();
        Assert.AreEqual(0, failed.Count, "wrong results:\n" + string.Join("\n", failed.Select(f => $"{f.Case}: {f.Detail}")));
    }

    /// <summary>
    /// Largest error the int8 path of a one-layer graph may show against the float path: half an output step for the
    /// final rounding plus one for requantization, plus the input quantization error (half an input step) times the
    /// layer's Lipschitz constant, plus the weight quantization error for Conv/FullyConnected.
    /// </summary>
    private static double Int8Bound(Quantization.QuantizedModel q, IReadOnlyList<float[]> inputs)
    {
        var l = q.Graph.Layers.Single();
        double so = q.OutputParams.Scale;
        double[] si = l.Inputs.Select(t => q.Activations[t].Scale).ToArray();
        double maxIn(int i) => inputs[q.Graph.Inputs.ToList().IndexOf(l.Inputs[i])].Max(v => Math.Abs(v));
        double bound = 1.5 * so;
        switch (l)
        {
            case Graph.Conv2D or Graph.FullyConnected:
            {
                var qc = (Quantization.QuantizedConv)q.Layers[l];
                var w = l is Graph.Conv2D c ? c.Weights : ((Graph.FullyConnected)l).Weights;
                int outs = qc.Bias.Length, per = w.Length / outs;
                double worst = 0;
                for (int o = 0; o < outs; o++)
                {
                    double sumAbs = 0;
                    for (int k = 0; k < per; k++) sumAbs += Math.Abs(w[o * per + k]);
                    worst = Math.Max(worst, sumAbs * si[0] / 2 + per * maxIn(0) * qc.WeightScales[o] / 2 + si[0] * qc.WeightScales[o] / 2);
                }
                bound += worst;
                break;
            }
            case Graph.UnaryElementwise u:
            {
                double lo = -maxIn(0) - si[0], hi = maxIn(0) + si[0], slope = 0;
                for (int k = 0; k < 2000; k++)
                {
                    double a = lo + (hi - lo) * k / 2000, b = lo + (hi - lo) * (k + 1) / 2000;
                    slope = Math.Max(slope, Math.Abs(u.Apply((float)b) - u.Apply((float)a)) / (b - a));
                }
                bound += slope * si[0] / 2;
                break;
            }
            case Graph.ChannelPRelu p: bound += Math.Max(1, p.Slopes.Max(Math.Abs)) * si[0] / 2; break;
            case Graph.Mul: bound += maxIn(1) * si[0] / 2 + maxIn(0) * si[1] / 2 + si[0] * si[1] / 4; break;
            case Graph.Softmax: bound += 0.5 * si[0] + 2.0 / 256; break;
            default: bound += si.Sum() / 2; break; // pools, Add/Sub, Concat: 1-Lipschitz in each input
        }
        return bound;
    }

    [TestMethod]
    public void Int8Path_OfEachOneLayerCase_IsWithinTheScaleBoundOfTheFloatPath()
    {
        var lines = new List<string>();
        int checkedCases = 0;
        foreach (var row in File.ReadAllLines(Path.Combine(Root, "INDEX.tsv")).Select(l => l.Split('\t')))
        {
            var dir = Path.Combine(Root, row[0]);
            Graph.ModelGraph g;
            try { g = OnnxImporter.Load(Path.Combine(dir, "model.onnx")); }
            catch (CompilerException) { continue; }
            if (g.Layers.Count != 1) continue;
            var set = Path.Combine(dir, "test_data_set_0");
            var inputs = new List<float[]>();
            for (int i = 0; i < g.Inputs.Count; i++)
                inputs.Add(ToNhwc(ReadTensor(Path.Combine(set, $"input_{i}.pb"), out var d), d)!);
            if (inputs.Any(x => x == null)) continue;
            var q = Quantization.Quantizer.Quantize(g, ObserveInputs(g, inputs));
            var expected = FloatExecutor.Run(g, inputs);
            var actual = q.DequantizeOutput(Quantization.Int8Executor.Run(q, Planning.PatchPlanner.PerLayer(g),
                inputs.Select((x, i) => x.Select(q.Activations[g.Inputs[i]].Quantize).ToArray()).ToList()));
            double bound = Int8Bound(q, inputs), worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
            lines.Add($"{row[0]} ({g.Layers[0].Op}): max error {worst:G3}, bound {bound:G3}");
            Assert.IsTrue(worst <= bound + 1e-6, string.Join("\n", lines));
            checkedCases++;
        }
        Console.WriteLine(string.Join("\n", lines));
        Assert.IsTrue(checkedCases >= 40, $"only {checkedCases} one-layer cases checked");
    }

    private static Quantization.CalibrationRanges ObserveInputs(Graph.ModelGraph g, List<float[]> inputs) =>
        Quantization.CalibrationRanges.Observe(g, new[] { (IReadOnlyList<float[]>)inputs });

    /// <summary>One single-input case per operator, compiled to Cortex-M7 and run under QEMU: bytes equal the C# int8 reference.</summary>
    [TestMethod]
    public void Int8Kernels_OfEachOperator_AreBitExactUnderQemu()
    {
        var work = Directory.CreateTempSubdirectory("mcunet-kernels-").FullName;
        var done = new List<string>();
        try
        {
            var seen = new HashSet<string>();
            foreach (var row in File.ReadAllLines(Path.Combine(Root, "INDEX.tsv")).Select(l => l.Split('\t')))
            {
                Graph.ModelGraph g;
                try { g = OnnxImporter.Load(Path.Combine(Root, row[0], "model.onnx")); }
                catch (CompilerException) { continue; }
                if (g.Inputs.Count != 1 || g.Layers.Count != 1) continue;
                var op = g.Layers[0] switch
                {
                    Graph.UnaryElementwise u => u.Function.Split('(')[0],
                    Graph.Relayout r => "Relayout " + r.Function.Split('(')[0], // one per ONNX operator that moves data
                    var l => l.Op,
                };
                if (!seen.Add(op + (g.Layers[0] is Graph.AveragePool { Window.CountIncludePad: true } ? "+pad" : ""))) continue;
                var x = ToNhwc(ReadTensor(Path.Combine(Root, row[0], "test_data_set_0", "input_0.pb"), out var d), d);
                if (x == null) continue;
                var q = Quantization.Quantizer.Quantize(g, Quantization.CalibrationRanges.Observe(g, new[] { x }));
                var input = q.QuantizeInput(x);
                var plan = Planning.PatchPlanner.PerLayer(g);
                var dir = Path.Combine(work, done.Count.ToString());
                var src = Emission.CEmitter.Emit(q, plan, "m", Path.Combine(dir, "src"));
                var tc = new Toolchain.ArmToolchain(new Pipeline.ToolchainOptions());
                tc.CompileObject(src.ModelSourcePath, Path.Combine(dir, "m.o"), new[] { Path.GetDirectoryName(src.HeaderPath)! });
                tc.Archive(new[] { Path.Combine(dir, "m.o") }, Path.Combine(dir, "libm.a"));
                var run = new Toolchain.QemuHarness(tc, "qemu-system-arm").Run(Path.Combine(dir, "libm.a"), src.HeaderPath, "m",
                    input.Select(b => (byte)b).ToArray(), 1, Path.Combine(dir, "run"));
                CollectionAssert.AreEqual(Quantization.Int8Executor.Run(q, plan, input).Select(b => (byte)b).ToArray(), run.Output(0).ToArray(), $"{row[0]} ({op})");
                done.Add($"{op}: {row[0]}");
            }
        }
        finally { Directory.Delete(work, true); }
        Console.WriteLine(string.Join("\n", done));
        Assert.IsTrue(done.Count >= 10, $"only {done.Count} operators compiled: {string.Join(", ", done)}");
    }
}
