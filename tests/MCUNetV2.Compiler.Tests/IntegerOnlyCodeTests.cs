using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The generated inference code is integer-only: compiled for Cortex-M7 with the hardware FPU enabled
/// (-mfloat-abi=hard -mfpu=fpv5-d16, so the compiler could use it freely), the object code holds no FPU instruction
/// (every Cortex-M7 FPU instruction is a V* mnemonic: VADD.F32, VCVT, VMOV, VLDR, VPUSH...) and calls no software
/// floating-point or libm routine.
/// </summary>
[TestClass]
public sealed class IntegerOnlyCodeTests
{
    private static readonly Regex FloatHelper = new(@"__aeabi_[fd]|__aeabi_[il]2[fd]|\b(expf?|logf?|powf?|sqrtf?|roundf?|floorf?)\b");

    private static IEnumerable<(string Name, QuantizedModel Model, ExecutionPlan Plan)> Models()
    {
        var vww = OnnxImporter.Load(TestData.VwwModel);
        var vwwInt8 = Quantizer.Quantize(vww, CalibrationRanges.Observe(vww, TestData.VwwImages.Take(4).Select(i => TestData.VwwInput(i.Path, vww.Input.Shape))));
        yield return ("vww-per-layer", vwwInt8, PatchPlanner.PerLayer(vww));
        yield return ("vww-2x2", vwwInt8, PatchSearch.BestForGrid(vww, 2, 2)!);
        var mnist = OnnxImporter.Load(Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx"));
        var mnistInt8 = Quantizer.Quantize(mnist, CalibrationRanges.Observe(mnist, Enumerable.Range(0, 3).Select(i => MnistTests.DataSet(i).Input)));
        yield return ("mnist-8", mnistInt8, PatchPlanner.PerLayer(mnist));
    }

    [TestMethod]
    public void GeneratedInferenceCode_HasNoFloatingPointInstruction() => WithToolchain("mcunet-intonly-", (tc, objdump, work) =>
    {
        // The check itself finds floating point: a control file with a float multiply and expf.
        var control = Path.Combine(work, "control.c");
        File.WriteAllText(control, "#include <math.h>\nfloat f(float a, float b) { return expf(a * b); }\n");
        tc.CompileObject(control, Path.Combine(work, "control.o"), Array.Empty<string>());
        var (_, controlFpu, controlHelpers) = Inspect(objdump, Path.Combine(work, "control.o"));
        Assert.IsTrue(controlFpu.Count > 0 && controlHelpers.Count > 0, "the control file's float code was not detected");

        foreach (var (name, model, plan) in Models())
        {
            var dir = Path.Combine(work, name);
            var src = CEmitter.Emit(model, plan, "m", Path.Combine(dir, "src"));
            var obj = Path.Combine(dir, "m.o");
            tc.CompileObject(src.ModelSourcePath, obj, new[] { Path.GetDirectoryName(src.HeaderPath)! });
            var (instructions, fpu, helpers) = Inspect(objdump, obj);
            Console.WriteLine($"{name}: {instructions} instructions, FPU instructions: {fpu.Count}, float helper calls: {helpers.Count}");
            Assert.IsTrue(instructions > 200, $"{name}: objdump listed only {instructions} instructions");
            Assert.AreEqual(0, fpu.Count, $"{name}: FPU instructions in the inference code: {string.Join(", ", fpu)}");
            Assert.AreEqual(0, helpers.Count, $"{name}: floating-point helper calls: {string.Join("; ", helpers)}");
        }
    });

    /// <summary>
    /// DequantizeOutput="true": the header declares the float helpers, the object defines them and they use the FPU,
    /// while &lt;prefix&gt;_invoke and every kernel stay integer-only (the helpers are the only float code).
    /// </summary>
    [TestMethod]
    public void DequantizeOutput_AddsFloatHelpers_AndInvokeStaysIntegerOnly() => WithToolchain("mcunet-floatout-", (tc, objdump, work) =>
    {
        var (_, model, plan) = Models().Last(); // mnist-8
        var src = CEmitter.Emit(model, plan, "m", Path.Combine(work, "src"), dequantizeOutput: true);
        var header = File.ReadAllText(src.HeaderPath);
        StringAssert.Contains(header, "void m_dequantize_output(const int8_t *q, float *out);");
        StringAssert.Contains(header, "int m_invoke_float(const int8_t *input, float *output);");
        var obj = Path.Combine(work, "m.o");
        tc.CompileObject(src.ModelSourcePath, obj, new[] { Path.GetDirectoryName(src.HeaderPath)! });

        var functions = InspectFunctions(objdump, obj);
        Console.WriteLine(string.Join("\n", functions.Select(f => $"{f.Key}: {f.Value.Instructions} instructions, FPU: {string.Join(" ", f.Value.Fpu)}")));
        Assert.IsTrue(functions.ContainsKey("m_invoke") && functions.ContainsKey("m_invoke_float") && functions.ContainsKey("m_dequantize_output"),
            string.Join(", ", functions.Keys));
        Assert.IsTrue(functions["m_dequantize_output"].Fpu.Count > 0, "the float helper computes in float (FPU)");
        var floatHelpers = new[] { "m_dequantize_output", "m_invoke_float" };
        foreach (var (name, f) in functions.Where(f => !floatHelpers.Contains(f.Key)))
        {
            Assert.AreEqual(0, f.Fpu.Count, $"{name}: FPU instructions: {string.Join(", ", f.Fpu)}");
            Assert.AreEqual(0, f.Helpers.Count, $"{name}: float helper calls: {string.Join("; ", f.Helpers)}");
        }
        Assert.IsTrue(functions["m_invoke"].Instructions > 20);

        // the default emits none of it
        var plain = CEmitter.Emit(model, plan, "m", Path.Combine(work, "plain"));
        Assert.IsFalse(File.ReadAllText(plain.HeaderPath).Contains("float", StringComparison.Ordinal));
        Assert.IsFalse(File.ReadAllText(plain.ModelSourcePath).Contains("_invoke_float", StringComparison.Ordinal));
    });

    /// <summary>Runs <paramref name="body"/> with the Arm toolchain, its objdump and a temporary folder (removed after).</summary>
    private static void WithToolchain(string tempPrefix, Action<ArmToolchain, string, string> body)
    {
        var work = Directory.CreateTempSubdirectory(tempPrefix).FullName;
        try
        {
            var tc = new ArmToolchain(new ToolchainOptions());
            var objdump = tc.FindTool("objdump") ?? throw new AssertInconclusiveException("arm-none-eabi-objdump not found");
            body(tc, objdump, work);
        }
        finally { try { Directory.Delete(work, true); } catch (IOException) { } }
    }

    private sealed record FunctionCode(int Instructions, List<string> Fpu, List<string> Helpers);

    /// <summary>Instruction count, distinct FPU mnemonics and relocations to float helpers in an object file.</summary>
    private static (int Instructions, List<string> Fpu, List<string> Helpers) Inspect(string objdump, string obj)
    {
        var functions = InspectFunctions(objdump, obj).Values.ToList();
        return (functions.Sum(f => f.Instructions), functions.SelectMany(f => f.Fpu).Distinct().ToList(), functions.SelectMany(f => f.Helpers).Distinct().ToList());
    }

    /// <summary>The same per function (objdump's "&lt;name&gt;:" labels).</summary>
    private static Dictionary<string, FunctionCode> InspectFunctions(string objdump, string obj)
    {
        var run = ProcessRunner.Run(objdump, new[] { "-d", "-r", "--no-show-raw-insn", obj }, timeout: TimeSpan.FromMinutes(1));
        Assert.AreEqual(0, run.ExitCode, run.StandardError);
        var result = new Dictionary<string, FunctionCode>();
        var current = new FunctionCode(0, new List<string>(), new List<string>());
        string name = "";
        void Flush() { if (current.Instructions > 0 || current.Helpers.Count > 0) result[name] = current; }
        foreach (var line in run.StandardOutput.Split('\n'))
        {
            var label = Regex.Match(line, @"^[0-9a-f]+ <([^>]+)>:$");
            if (label.Success)
            {
                Flush();
                name = label.Groups[1].Value;
                current = new FunctionCode(0, new List<string>(), new List<string>());
                continue;
            }
            // "   1a4:	vadd.f32	s0, s0, s1" -> the mnemonic is the second tab-separated field
            var f = line.Split('\t');
            if (line.Contains("R_ARM_") && FloatHelper.IsMatch(line))
            {
                if (!current.Helpers.Contains(line.Trim())) current.Helpers.Add(line.Trim());
            }
            else if (f.Length >= 2 && Regex.IsMatch(f[0], @"^\s*[0-9a-f]+:$"))
            {
                var mnemonic = f[1].Trim();
                current = current with { Instructions = current.Instructions + 1 };
                if (mnemonic.StartsWith('v') && !current.Fpu.Contains(mnemonic)) current.Fpu.Add(mnemonic);
            }
        }
        Flush();
        return result;
    }
}
