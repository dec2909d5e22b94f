using System.Globalization;
using System.Text;
using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Tests;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Benchmarks;

/// <summary>
/// Counts guest instructions of the generated code under <c>qemu-system-arm -machine mps2-an500 -icount shift=0</c>
/// (CMSDK timer0: one tick = 40 instructions) per layer (the library compiled with -DMCU_PROFILE) and per model, and
/// measures code size by optimisation level. Writes a markdown report (default docs/benchmarks.md).
/// Usage: dotnet run -c Release --project bench/MCUNetV2.Benchmarks [-- --out FILE] [--quick]
/// </summary>
public static class Program
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    public static int Main(string[] args)
    {
        string root = FindRoot();
        string output = Path.Combine(root, "docs", "benchmarks.md");
        bool quick = false;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--out" && i + 1 < args.Length) output = Path.GetFullPath(args[++i]);
            else if (args[i] == "--quick") quick = true;
            else { Console.Error.WriteLine($"unknown argument '{args[i]}'; usage: [--out FILE] [--quick]"); return 2; }
        }
        var work = Directory.CreateTempSubdirectory("mcunet-bench-").FullName;
        try
        {
            var md = new StringBuilder();
            var started = DateTime.UtcNow;
            md.Append("# Benchmarks: instructions on Cortex-M7 (QEMU)\n\n")
              .Append("Guest instructions of the generated code, counted under `qemu-system-arm -machine mps2-an500 -icount shift=0` ")
              .Append("(virtual time is 1 ns per instruction, CMSDK timer0 runs at 25 MHz, so one timer tick is 40 instructions; ")
              .Append("per-layer figures are +-40). Per-layer counts come from timer reads between the layer calls (the library ")
              .Append("compiled with `-DMCU_PROFILE`, which adds a few instructions per layer). `-mcpu=cortex-m7 -mthumb -mfloat-abi=hard ")
              .Append("-mfpu=fpv5-d16 -O2` unless stated. QEMU counts instructions, not cycles: it models no pipeline, caches or ")
              .Append("memory wait states, so these are instruction counts, not timings.\n\n")
              .Append("Reproduce: `dotnet run -c Release --project bench/MCUNetV2.Benchmarks` (writes this file).\n\n");
            int targetsAt = md.Length;
            var targets = new List<(string Model, ExecutionPlan Plan, ModelGraph Graph, IReadOnlyList<long> Instructions)>();

            var vww = VwwModel(root);
            var perLayerCounts = Section(md, "VWW sample (MobileNetV2 0.5, 128x128), layer by layer", vww, PatchPlanner.PerLayer(vww.Graph), work, "vww-layer", perLayerTable: true);
            var summary = new List<(string Plan, long Instructions, long Macs)>();
            foreach (var (name, plan) in new[]
                     {
                         ("per-layer", PatchPlanner.PerLayer(vww.Graph)),
                         ("2x2 patches", PatchSearch.BestForGrid(vww.Graph, 2, 2)!),
                         ("auto (4x4 patches)", PatchSearch.Best(vww.Graph, PatchSearch.DefaultMaxMacOverhead)),
                     })
            {
                var run = Run(vww, plan, work, "vww-" + name.Split(' ')[0], profile: false);
                summary.Add((name, run.InstructionsPerSample![0], plan.ExecutedMacs));
            }
            targets.Add(("VWW sample", PatchPlanner.PerLayer(vww.Graph), vww.Graph, perLayerCounts));
            WholeModel(md, vww.Graph, summary);
            PatchStage(md, vww, PatchSearch.Best(vww.Graph, PatchSearch.DefaultMaxMacOverhead), perLayerCounts, work);
            CodeSize(md, vww, work);

            var large = LargeDepthwise(work);
            Section(md, "Depthwise 5x5 and 7x7 at stride 1 and 2 (MCUNet-style shapes, random weights), layer by layer", large,
                PatchPlanner.PerLayer(large.Graph), work, "large-dw", perLayerTable: true);

            if (!quick)
            {
                var mbv2 = MobileNetV2(work);
                var mbv2Plan = PatchPlanner.PerLayer(mbv2.Graph);
                targets.Add(("MobileNetV2-1.0-224", mbv2Plan, mbv2.Graph,
                    Section(md, "MobileNetV2-1.0, 224x224 (random weights), layer by layer", mbv2, mbv2Plan, work, "mbv2", perLayerTable: true)));
            }
            md.Insert(targetsAt, Targets(targets, summary, vww.Graph.TotalMacs));
            md.Append(Ci, $"Measured {DateTime.UtcNow:yyyy-MM-dd} in {(DateTime.UtcNow - started).TotalSeconds:F0} s (.NET {Environment.Version}).\n");
            Directory.CreateDirectory(Path.GetDirectoryName(output)!);
            File.WriteAllText(output, md.ToString());
            Console.WriteLine(md);
            Console.WriteLine($"written: {output}");
            return 0;
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("MCUNET_BENCH_KEEP") == null) try { Directory.Delete(work, true); } catch (IOException) { }
        }
    }

    private sealed record Model(string Name, ModelGraph Graph, QuantizedModel Int8, sbyte[] Input);

    private static string FindRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (dir != null && !File.Exists(Path.Combine(dir, "MCUNetV2.Build.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("run from inside the repository (MCUNetV2.Build.sln not found)");
    }

    private static Model VwwModel(string root)
    {
        var images = Directory.GetFiles(Path.Combine(root, "samples", "VisualWakeWords", "calibration"), "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).ToList();
        var options = new TinyModelOptions
        {
            ModelPath = Path.Combine(root, "samples", "VisualWakeWords", "vww.onnx"),
            OutputDirectory = Path.GetTempPath(),
            Prefix = "vww",
            CalibrationFiles = images,
        };
        var compiled = TinyModelBuilder.Compile(options, new ConsoleSink());
        return new Model("vww", compiled.Graph, compiled.Int8, compiled.Int8.QuantizeInput(compiled.CalibrationInputs[0]));
    }

    private static Model MobileNetV2(string work)
    {
        var graph = OnnxImporter.Load(MobileNetV2Model.Save(Path.Combine(work, "mbv2.onnx"), 1.0, 224));
        var r = new Random(1);
        var x = Enumerable.Range(0, graph.Input.Shape.Elements).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, new[] { x }));
        return new Model("mbv2", graph, q, q.QuantizeInput(x));
    }

    /// <summary>Inverted-residual blocks with 5x5 and 7x7 depthwise convolutions (MCUNet's searched kernel sizes).</summary>
    private static Model LargeDepthwise(string work)
    {
        var r = new Random(5);
        IEnumerable<float> W(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale));
        var b = new OnnxModelBuilder(13).Input("x", 1, 16, 56, 56);
        string t = "x";
        int c = 16, id = 0;
        foreach (var (k, s, hidden, cout) in new[] { (5, 1, 48, 16), (7, 2, 96, 24), (5, 2, 144, 40), (7, 1, 240, 40) })
        {
            string n = $"l{id++}";
            b.Floats(n + "e", new long[] { hidden, c, 1, 1 }, W(hidden * c, 0.3)).Node("Conv", new[] { t, n + "e" }, n + "ec").Node("Relu", new[] { n + "ec" }, n + "er")
             .Floats(n + "d", new long[] { hidden, 1, k, k }, W(hidden * k * k, 0.3)).Floats(n + "db", new long[] { hidden }, W(hidden, 0.1))
             .Node("Conv", new[] { n + "er", n + "d", n + "db" }, n + "dc", OnnxModelBuilder.Ints("pads", k / 2, k / 2, k / 2, k / 2),
                 OnnxModelBuilder.Ints("strides", s, s), OnnxModelBuilder.Int("group", hidden))
             .Node("Relu", new[] { n + "dc" }, n + "dr")
             .Floats(n + "p", new long[] { cout, hidden, 1, 1 }, W(cout * hidden, 0.3)).Node("Conv", new[] { n + "dr", n + "p" }, n + "pc");
            t = n + "pc";
            c = cout;
        }
        b.Node("GlobalAveragePool", new[] { t }, "y").Output("y", 1, c, 1, 1);
        var graph = OnnxImporter.Load(b.Save(Path.Combine(work, "large-dw.onnx")));
        var x = Enumerable.Range(0, graph.Input.Shape.Elements).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        var q = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, new[] { x }));
        return new Model("large", graph, q, q.QuantizeInput(x));
    }

    /// <summary>The model built, run under QEMU and checked against the int8 reference; also its library and weight bytes.</summary>
    private static (HarnessRunResult Run, string Library, long WeightBytes) Build(Model m, ExecutionPlan plan, string work, string name, bool profile,
        string optimization = "-O2", bool wideWeights = false)
    {
        var dir = Path.Combine(work, name + optimization + (wideWeights ? "-int16" : ""));
        var src = CEmitter.Emit(m.Int8, plan, m.Name, Path.Combine(dir, "src"), wideWeights: wideWeights);
        var tc = new ArmToolchain(new ToolchainOptions { OptimizationFlags = optimization + (profile ? " -DMCU_PROFILE" : "") });
        tc.CompileObject(src.ModelSourcePath, Path.Combine(dir, "m.o"), new[] { Path.GetDirectoryName(src.HeaderPath)! });
        var lib = Path.Combine(dir, $"lib{m.Name}.a");
        tc.Archive(new[] { Path.Combine(dir, "m.o") }, lib);
        var run = new QemuHarness(tc, "qemu-system-arm").Run(lib, src.HeaderPath, m.Name, m.Input.Select(b => (byte)b).ToArray(), 1,
            Path.Combine(dir, "run"), countInstructions: true, timeout: TimeSpan.FromMinutes(10));
        var reference = Int8Executor.Run(m.Int8, plan, m.Input).Select(b => (byte)b).ToArray();
        if (!run.Output(0).SequenceEqual(reference))
            throw new InvalidOperationException($"{name}: QEMU output differs from the C# int8 reference");
        return (run, lib, src.WeightBytes);
    }

    private static HarnessRunResult Run(Model m, ExecutionPlan plan, string work, string name, bool profile) => Build(m, plan, work, name, profile).Run;

    private static string Describe(Layer l, ExecutionPlan plan, int index)
    {
        var k = plan.KernelOf(index);
        string extra = k.InPlaceOver != null ? ", in place" : k.FusedConv != null ? ", with its pointwise conv" : k.FusedIntoAdd != null ? ", in the Add" : "";
        return l switch
        {
            Conv2D c => $"{c.Op} {c.Window.KernelH}x{c.Window.KernelW} s{c.Window.StrideH}{extra}",
            PoolLayer p => $"{p.Op} {p.Window.KernelH}x{p.Window.KernelW}",
            _ => l.Op + extra,
        };
    }

    /// <summary>Instructions per layer (the library built with MCU_PROFILE), summed over patches and calls.</summary>
    private static IReadOnlyList<long> LayerInstructions(Model m, ExecutionPlan plan, string work, string name) =>
        Run(m, plan, work, name, profile: true).LayerInstructions ?? throw new InvalidOperationException("no per-layer counts (MCU_PROFILE)");

    private static IReadOnlyList<long> Section(StringBuilder md, string title, Model m, ExecutionPlan plan, string work, string name, bool perLayerTable)
    {
        var ins = LayerInstructions(m, plan, work, name);
        var g = m.Graph;
        md.Append(Ci, $"## {title}\n\n");
        // fused convolutions are counted in their Add
        long Macs(int i) => g.Layers[i].Macs + (plan.KernelOf(i).FusedConv is { } c ? g.Layers[c].Macs : 0);
        if (perLayerTable)
        {
            md.Append("| # | layer | input -> output | MACs | instructions | instr/MAC |\n|---|---|---|---|---|---|\n");
            for (int i = 0; i < g.Layers.Count; i++)
            {
                if (plan.KernelOf(i).FusedIntoAdd != null) continue;
                var l = g.Layers[i];
                long macs = Macs(i);
                md.Append(Ci, $"| {i} | {Describe(l, plan, i)} | {l.Inputs[0].Shape} -> {l.Output.Shape} | {macs:N0} | {ins[i]:N0} | {(macs == 0 ? "-" : ((double)ins[i] / macs).ToString("F2", Ci))} |\n");
            }
            md.Append('\n');
        }
        // by kind of layer
        var kinds = Enumerable.Range(0, g.Layers.Count).Where(i => plan.KernelOf(i).FusedIntoAdd == null)
            .GroupBy(i => Describe(g.Layers[i], plan, i).Replace(", in place", "").Split(" s")[0] + (g.Layers[i] is Conv2D c ? $" s{c.Window.StrideH}" : ""))
            .Select(grp => (Kind: grp.Key, Count: grp.Count(), Macs: grp.Sum(Macs), Instructions: grp.Sum(i => ins[i])))
            .OrderByDescending(x => x.Instructions).ToList();
        md.Append("| kind of layer | layers | MACs | instructions | instr/MAC | share of instructions |\n|---|---|---|---|---|---|\n");
        long total = ins.Sum();
        foreach (var k in kinds)
            md.Append(Ci, $"| {k.Kind} | {k.Count} | {k.Macs:N0} | {k.Instructions:N0} | {(k.Macs == 0 ? "-" : ((double)k.Instructions / k.Macs).ToString("F2", Ci))} | {(double)k.Instructions / total:P1} |\n");
        md.Append(Ci, $"\nTotal: {total:N0} instructions for {g.TotalMacs:N0} MACs = {(double)total / g.TotalMacs:F2} instructions per MAC (sum over layers).\n\n");
        return ins;
    }

    /// <summary>The layers of a plan's per-patch stage: instructions per patch schedule against layer by layer.</summary>
    private static void PatchStage(StringBuilder md, Model m, ExecutionPlan plan, IReadOnlyList<long> perLayer, string work)
    {
        var ins = LayerInstructions(m, plan, work, "vww-patch-stage");
        var g = m.Graph;
        md.Append(Ci, $"## VWW per-patch stage ({plan.Describe()})\n\n")
          .Append("Each layer of the per-patch stage: instructions summed over the patches against the same layer run layer by layer, ")
          .Append("and the MACs the patches execute (halos recomputed) against the layer's MACs.\n\n")
          .Append("| # | layer | MACs | MACs in patches | instructions layer by layer | instructions in patches | instruction ratio | MAC ratio |\n|---|---|---|---|---|---|---|---|\n");
        long macsLayer = 0, macsPatch = 0, insLayer = 0, insPatch = 0;
        for (int i = 0; i < plan.PatchLayerCount; i++)
        {
            var l = g.Layers[i];
            long macs = l.Macs, executed = plan.PatchStageExecutedMacs[i];
            macsLayer += macs; macsPatch += executed; insLayer += perLayer[i]; insPatch += ins[i];
            md.Append(Ci, $"| {i} | {Describe(l, plan, i)} | {macs:N0} | {executed:N0} | {perLayer[i]:N0} | {ins[i]:N0} | {(perLayer[i] == 0 ? "-" : ((double)ins[i] / perLayer[i]).ToString("F3", Ci))} | {(macs == 0 ? "-" : ((double)executed / macs).ToString("F3", Ci))} |\n");
        }
        md.Append(Ci, $"| all | | {macsLayer:N0} | {macsPatch:N0} | {insLayer:N0} | {insPatch:N0} | {(double)insPatch / insLayer:F3} | {(double)macsPatch / macsLayer:F3} |\n\n");
    }

    /// <summary>The issue's targets against the measured figures (the sections below give the details).</summary>
    private static string Targets(List<(string Model, ExecutionPlan Plan, ModelGraph Graph, IReadOnlyList<long> Instructions)> models,
        List<(string Plan, long Instructions, long Macs)> vwwRuns, long vwwMacs)
    {
        var md = new StringBuilder("## Targets\n\nThe issue's targets in instructions per MAC, layer by layer (pointwise: the pointwise convolutions ")
            .Append("that are not fused into a residual Add; depthwise 3x3: in place, both strides) and the patch-based bound.\n\n")
            .Append("| model | pointwise (target 1.0) | depthwise 3x3 s1 (2.0) | depthwise 3x3 s2 (2.0) | whole model (VWW: 1.5) |\n|---|---|---|---|---|\n");
        foreach (var (name, plan, g, ins) in models)
        {
            string Ratio(Func<Conv2D, bool> which)
            {
                long macs = 0, count = 0;
                for (int i = 0; i < g.Layers.Count; i++)
                    if (g.Layers[i] is Conv2D c && which(c) && plan.KernelOf(i).FusedIntoAdd == null) { macs += c.Macs; count += ins[i]; }
                return macs == 0 ? "-" : ((double)count / macs).ToString("F2", Ci);
            }
            bool Dw3(Conv2D c, int stride) => c.IsDepthwise && c.Window.KernelH == 3 && c.Window.KernelW == 3 && c.Window.StrideH == stride;
            md.Append(Ci, $"| {name} | {Ratio(c => c.IsPointwise)} | {Ratio(c => Dw3(c, 1))} | {Ratio(c => Dw3(c, 2))} | {(double)ins.Sum() / g.TotalMacs:F2} |\n");
        }
        md.Append("\n| VWW schedule | instructions | bound: (1 + MAC overhead) x per-layer + 5% | margin |\n|---|---|---|---|\n");
        var perLayer = vwwRuns[0];
        foreach (var r in vwwRuns.Skip(1))
        {
            double bound = (double)r.Macs / vwwMacs * perLayer.Instructions * 1.05;
            md.Append(Ci, $"| {r.Plan} | {r.Instructions:N0} | {bound:N0} | {(bound - r.Instructions) / bound:P2} |\n");
        }
        return md.Append('\n').ToString();
    }

    private static void WholeModel(StringBuilder md, ModelGraph g, List<(string Plan, long Instructions, long Macs)> runs)
    {
        md.Append("## VWW whole model\n\nOne inference (`vww_invoke`, no profiling marks), per schedule. The bound is the issue's: ")
          .Append("patch-based instructions at most (1 + MAC overhead) x per-layer instructions + 5%.\n\n")
          .Append("| schedule | MACs executed | MAC overhead | instructions | instr/MAC | bound | within |\n|---|---|---|---|---|---|---|\n");
        var perLayer = runs[0];
        foreach (var r in runs)
        {
            double overhead = (double)r.Macs / g.TotalMacs - 1;
            double bound = (1 + overhead) * perLayer.Instructions * 1.05;
            md.Append(Ci, $"| {r.Plan} | {r.Macs:N0} | {overhead:P1} | {r.Instructions:N0} | {(double)r.Instructions / g.TotalMacs:F2} | {(r == perLayer ? "-" : bound.ToString("N0", Ci))} | {(r == perLayer ? "-" : r.Instructions <= bound ? "yes" : "no")} |\n");
        }
        md.Append('\n');
    }

    private static void CodeSize(StringBuilder md, Model m, string work)
    {
        md.Append("## Code size and speed by optimisation level and weight width (VWW, layer by layer)\n\n")
          .Append("Flash of the library (`.text` + `.data`: code, weights and parameter tables) and the code alone (flash minus the weights).\n\n")
          .Append("| flags | flash (B) | code (B) | instructions | instr/MAC |\n|---|---|---|---|---|\n");
        var plan = PatchPlanner.PerLayer(m.Graph);
        foreach (var (flags, wide) in new[] { ("-Os", false), ("-O2", false), ("-O3", false), ("-O2", true), ("-O3", true) })
        {
            var (run, lib, weights) = Build(m, plan, work, "size", profile: false, optimization: flags, wideWeights: wide);
            var sizes = ElfSizes.Measure(lib);
            long ins = run.InstructionsPerSample![0];
            string label = wide ? $"`{flags}`, `PointwiseWeights=\"int16\"`" : $"`{flags}`";
            md.Append(Ci, $"| {label} | {sizes.FlashBytes:N0} | {sizes.FlashBytes - weights:N0} | {ins:N0} | {(double)ins / m.Graph.TotalMacs:F2} |\n");
        }
        md.Append("\n`PointwiseWeights=\"int16\"` stores the pointwise and first-convolution weights as 16-bit values, so the kernel loads them instead of widening them: twice their flash for fewer instructions.\n\n");
    }

    private sealed class ConsoleSink : MCUNetV2.Compiler.Diagnostics.IDiagnosticSink
    {
        public void Report(MCUNetV2.Compiler.Diagnostics.CompilerDiagnostic d) => Console.Error.WriteLine(d);
        public void Info(string message) => Console.Error.WriteLine(message);
    }
}
