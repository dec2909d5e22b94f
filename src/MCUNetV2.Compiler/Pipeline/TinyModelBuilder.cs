using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Export;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Input;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Pipeline;

/// <summary>
/// Runs the whole pipeline for one model: import, calibrate and quantize, plan, emit C, cross-compile, verify under
/// QEMU, write the memory report. Everything is produced in a staging folder and moved to
/// &lt;OutputDirectory&gt;/&lt;prefix&gt;/ only when every step succeeded, so an interrupted or failed build never leaves
/// outputs that look fresh.
/// </summary>
public static class TinyModelBuilder
{
    public static TinyModelResult Build(TinyModelOptions options, IDiagnosticSink sink)
    {
        var diagnostics = new List<CompilerDiagnostic>();
        void Report(CompilerDiagnostic d) { diagnostics.Add(d); sink.Report(d); }
        string? staging = null;
        try
        {
            var compiled = Compile(options, sink, Report);
            staging = Path.Combine(options.OutputDirectory, $".{options.Prefix}.staging-{Environment.ProcessId}-{Guid.NewGuid():N}");
            var result = Produce(options, compiled, staging, sink, Report);
            var final = Path.Combine(options.OutputDirectory, options.Prefix);
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(staging, final);
            staging = null;
            string Final(string p) => Path.Combine(final, Path.GetRelativePath(result.Staging, p));
            return new TinyModelResult
            {
                Succeeded = true,
                LibraryPath = Final(result.Library),
                HeaderPath = Final(result.Header),
                MemoryReportPath = Final(result.Report),
                HtmlReportPath = Final(result.HtmlReport),
                QdqModelPath = result.QdqModel == null ? null : Final(result.QdqModel),
                GeneratedSources = result.Sources.Select(Final).ToList(),
                Memory = result.Summary,
                Diagnostics = diagnostics,
            };
        }
        catch (CompilerException e)
        {
            if (!e.AlreadyReported) Report(e.Diagnostic);
            return new TinyModelResult { Succeeded = false, Diagnostics = diagnostics };
        }
        finally
        {
            if (staging != null && Directory.Exists(staging))
                try { Directory.Delete(staging, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The model after the front and middle of the pipeline: quantized, planned, with its calibration samples.</summary>
    /// <param name="Quantization">The quantization analysis (int8 vs float on the calibration samples), or why it was skipped.</param>
    public sealed record CompiledModel(ModelGraph Graph, QuantizedModel Int8, ExecutionPlan PerLayer, ExecutionPlan Plan, IReadOnlyList<CalibrationSample> CalibrationSamples,
        MemoryReport.QuantizationInfo Quantization)
    {
        /// <summary>The calibration inputs (float, NHWC), in calibration order.</summary>
        public IReadOnlyList<float[]> CalibrationInputs { get; } = CalibrationSamples.Select(s => s.Input).ToList();
    }

    /// <summary>Import, calibrate, quantize and plan (no files written).</summary>
    public static CompiledModel Compile(TinyModelOptions options, IDiagnosticSink sink, Action<CompilerDiagnostic>? report = null)
    {
        report ??= sink.Report;
        if (options.PatchRows < 1 || options.PatchCols < 1)
            throw new CompilerException(ErrorCodes.BadPatchGrid, $"PatchGrid {options.PatchRows}x{options.PatchCols} is invalid; use RxC with R, C >= 1", options.ModelPath);
        var graph = OnnxImporter.Load(options.ModelPath);
        if (graph.Inputs.Count != 1)
            throw new CompilerException(ErrorCodes.UnsupportedModel,
                $"the model has {graph.Inputs.Count} inputs ({string.Join(", ", graph.OnnxInputNames)}); a TinyModel takes exactly one image input", options.ModelPath);
        sink.Info($"{Path.GetFileName(options.ModelPath)}: {graph.Layers.Count} layers, input {graph.Input.Shape}, output {graph.Output.Shape}, {graph.TotalMacs:N0} MACs");

        foreach (var note in graph.Quantization?.Notes ?? new List<string>())
            report(new CompilerDiagnostic(DiagnosticSeverity.Warning, ErrorCodes.QuantizationAdjusted, note, options.ModelPath));
        var uncalibrated = Quantizer.TensorsNeedingCalibration(graph);
        if (options.CalibrationFiles.Count == 0 && uncalibrated.Count > 0)
            throw new CompilerException(ErrorCodes.CalibrationMissing,
                graph.Quantization == null
                    ? "no calibration data: set the Calibration metadata of the TinyModel item to images (or IDX, .npy, .pb files) the model will see (e.g. Calibration=\"calibration/**/*.png\"); activation ranges are never guessed"
                    : $"the model is pre-quantized but {uncalibrated.Count} tensor(s) carry no scale and zero point ({string.Join(", ", uncalibrated.Take(5).Select(t => $"'{t.Name}'"))}{(uncalibrated.Count > 5 ? ", ..." : "")}); " +
                      "set the Calibration metadata to images (or IDX, .npy, .pb files) the model will see, or quantize every activation in the model (QuantizeLinear after each operator)",
                options.ModelPath);
        var samples = CalibrationData.LoadSamples(options.CalibrationFiles,
            new CalibrationTarget(graph.Input.Shape, options.Preprocessing, options.InputLayout, graph.OnnxInputRanks[0]), options.CalibrationLimit);
        var inputs = samples.Select(s => s.Input).ToList();
        if (samples.Count > 0)
            sink.Info($"calibration data: {samples.Count} sample(s) from {samples.Select(s => s.File).Distinct().Count()} of {options.CalibrationFiles.Count} file(s)" +
                      (options.CalibrationLimit is { } limit ? $" (CalibrationLimit {limit})" : ""));
        if (graph.Quantization != null)
            sink.Info($"pre-quantized model: {graph.Quantization.Activations.Count} activation scale(s) and {graph.Quantization.WeightScales.Count} layer(s) of integer weights taken from the model" +
                      (uncalibrated.Count > 0 ? $"; {uncalibrated.Count} tensor(s) calibrated on {inputs.Count} sample(s)" : ", no calibration"));
        var ranges = uncalibrated.Count > 0 ? CalibrationRanges.Observe(graph, inputs, options.Calibration) : null;
        var int8 = Quantizer.Quantize(graph, ranges, new QuantizerOptions { BiasCorrection = options.BiasCorrection });
        var quantization = AnalyzeQuantization(options, int8, inputs, sink, report);

        var (perLayer, plan) = ChoosePlan(options, graph, sink, report);
        if (options.StreamInput && !plan.IsPatchBased)
            report(new CompilerDiagnostic(DiagnosticSeverity.Warning, ErrorCodes.PatchingDoesNotHelp,
                $"StreamInput needs a patch-based plan (the first layer of a layer-by-layer plan reads the whole frame); the model is built layer by layer, so {options.Prefix}_invoke_streamed is not generated",
                options.ModelPath));
        CheckSramBudget(options, graph, perLayer, plan);
        return new CompiledModel(graph, int8, perLayer, plan, samples, quantization);
    }

    /// <summary>
    /// The schedule: PatchGrid="auto" searches grids and splits jointly (within MaxMacOverhead); an explicit grid searches
    /// the split (or takes PatchSplit). A plan that does not lower peak SRAM is never used: MCU3002 and layer by layer.
    /// </summary>
    private static (ExecutionPlan PerLayer, ExecutionPlan Plan) ChoosePlan(TinyModelOptions options, ModelGraph graph, IDiagnosticSink sink, Action<CompilerDiagnostic> report)
    {
        var perLayer = PatchPlanner.PerLayer(graph);
        int? split = string.IsNullOrWhiteSpace(options.PatchSplit) ? null : PatchSearch.ResolveSplit(graph, options.PatchSplit.Trim(), options.ModelPath);
        void Warn(string message) => report(new CompilerDiagnostic(DiagnosticSeverity.Warning, ErrorCodes.PatchingDoesNotHelp, message, options.ModelPath));
        if (options.AutoPatchGrid)
        {
            if (!(options.MaxMacOverhead >= 0))
                throw new CompilerException(ErrorCodes.BadPatchGrid, $"MaxMacOverhead {options.MaxMacOverhead} is invalid; use a fraction >= 0 (0.3 = 30% more MACs)", options.ModelPath);
            var best = PatchSearch.Best(graph, options.MaxMacOverhead, split, streamInput: options.StreamInput);
            if (!best.IsPatchBased)
            {
                Warn($"PatchGrid=\"auto\": no patch grid up to {PatchSearch.MaxGridDimension}x{PatchSearch.MaxGridDimension}" + (split != null ? $" with PatchSplit {split}" : "") +
                     $" lowers peak SRAM below layer-by-layer inference ({perLayer.PeakLiveBytes:N0} B) within MaxMacOverhead {options.MaxMacOverhead:P0}; building it layer by layer");
                return (perLayer, perLayer);
            }
            if (options.StreamInput) sink.Info($"StreamInput: each patch's input region is read through {options.Prefix}_invoke_streamed's callback into {best.InputStaging!.Bytes:N0} arena bytes");
            sink.Info($"PatchGrid auto: {best.GridRows}x{best.GridCols}, {best.Describe()}; peak {best.PeakLiveBytes:N0} B (per-layer {perLayer.PeakLiveBytes:N0} B), " +
                      $"{(double)best.ExecutedMacs / graph.TotalMacs - 1:P1} more MACs (MaxMacOverhead {options.MaxMacOverhead:P0})");
            return (perLayer, best);
        }
        if (options.PatchRows * options.PatchCols == 1)
        {
            if (split != null)
                throw new CompilerException(ErrorCodes.BadPatchGrid, "PatchSplit needs a PatchGrid other than 1x1 (or PatchGrid=\"auto\")", options.ModelPath);
            return (perLayer, perLayer);
        }
        var forGrid = PatchSearch.BestForGrid(graph, options.PatchRows, options.PatchCols, split, options.StreamInput);
        if (forGrid == null && split != null)
            throw new CompilerException(ErrorCodes.BadPatchGrid,
                $"PatchSplit {split} ('{graph.Layers[split.Value - 1].Output.Name}') cannot end the per-patch stage on a {options.PatchRows}x{options.PatchCols} grid " +
                $"(every earlier layer must be spatially local and the split tensor the only one crossing it). Possible splits: {PatchSearch.DescribeCandidates(graph, options.PatchRows, options.PatchCols)}",
                options.ModelPath);
        if (forGrid == null || forGrid.PeakLiveBytes >= perLayer.PeakLiveBytes)
        {
            Warn(forGrid == null
                ? $"no leading layers of this model can run on a {options.PatchRows}x{options.PatchCols} patch grid; building it layer by layer"
                : $"a {options.PatchRows}x{options.PatchCols} patch grid would need {forGrid.PeakLiveBytes:N0} bytes of SRAM, no less than layer-by-layer inference ({perLayer.PeakLiveBytes:N0}); building it layer by layer");
            return (perLayer, perLayer);
        }
        return (perLayer, forGrid);
    }

    /// <summary>The quantization analysis compares int8 with float on at most this many calibration samples (the first ones).</summary>
    public const int AnalysisSampleLimit = 64;

    /// <summary>
    /// Per-layer SQNR of the int8 model against the float model on the calibration samples, and one MCU2005 warning per
    /// layer under <see cref="TinyModelOptions.MinLayerSqnrDb"/>. Skipped (the report says why) without samples.
    /// </summary>
    private static MemoryReport.QuantizationInfo AnalyzeQuantization(TinyModelOptions options, QuantizedModel int8, IReadOnlyList<float[]> inputs,
        IDiagnosticSink sink, Action<CompilerDiagnostic> report)
    {
        if (inputs.Count == 0)
        {
            const string why = "no calibration samples (a pre-quantized model built without calibration data): the int8 model was not compared with the float model";
            sink.Info($"quantization analysis skipped: {why}");
            return MemoryReport.QuantizationInfo.Skipped(options.Calibration, options.BiasCorrection, why);
        }
        var used = inputs.Take(AnalysisSampleLimit).ToList();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var analysis = QuantizationAnalysis.Analyze(int8, used);
        sink.Info($"quantization analysis (int8 vs float, {CalibrationName(options)}) on {used.Count} sample(s) took {clock.Elapsed.TotalSeconds:0.00} s");
        string? note = used.Count < inputs.Count ? $"analysed on the first {used.Count} of {inputs.Count} calibration samples" : null;
        sink.Info(analysis.Describe(3));
        if (options.MinLayerSqnrDb is { } min)
        {
            foreach (var l in analysis.Layers.Where(l => l.SqnrDb < min))
                report(new CompilerDiagnostic(DiagnosticSeverity.Warning, ErrorCodes.LowLayerSqnr,
                    $"layer '{l.Layer}' ({l.Op}, #{l.Index}) has an SQNR of {QuantizationAnalysis.FormatDb(l.SqnrDb)} dB, under MinLayerSqnr = {min.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} dB " +
                    $"(int8 vs float over {used.Count} calibration sample(s), {CalibrationName(options)}; {l.ClippedPercent.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)}% of its values clipped). " +
                    "Try CalibrationMethod=\"Percentile\" or \"MSE\", BiasCorrection=\"true\", or more representative calibration data; MinLayerSqnr=\"\" turns this check off.",
                    options.ModelPath));
        }
        return MemoryReport.QuantizationInfo.From(options.Calibration, options.BiasCorrection, analysis, note);
    }

    /// <summary>A layer name without the '/'-separated path that all layer names share ("model/block/LAYER_48/Conv2D" -> "LAYER_48/Conv2D").</summary>
    internal static string ShortLayerName(string name, IEnumerable<string> allNames)
    {
        int common = name.LastIndexOf('/') + 1;
        foreach (var other in allNames)
        {
            int n = 0, max = Math.Min(common, other.Length);
            while (n < max && other[n] == name[n]) n++;
            common = n == 0 ? 0 : name.LastIndexOf('/', n - 1) + 1;
            if (common == 0) break;
        }
        return name[common..];
    }

    /// <summary>"MinMax", "Percentile(99.99)", with " + bias correction" when on.</summary>
    internal static string CalibrationName(TinyModelOptions options) =>
        options.Calibration + (options.BiasCorrection ? " + bias correction" : "");

    /// <summary>The build log's quantization line: method, output SQNR, top-1 agreement and the worst layer.</summary>
    internal static string QuantizationSummary(TinyModelOptions options, MemoryReport.QuantizationInfo q)
    {
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        if (!q.Analyzed) return $"{CalibrationName(options)}, not analysed ({q.Note})";
        static string Db(double? db, IFormatProvider ci) => db is { } d ? d.ToString("0.0", ci) + " dB" : "exact";
        var line = $"{CalibrationName(options)}, output SQNR {Db(q.OutputSqnrDb, ci)}, top-1 agreement {q.Top1Agreements}/{q.Samples}";
        if (q.WorstLayer is { } w) line += $", worst layer {ShortLayerName(w.Name, q.Layers!.Select(l => l.Name))} {w.Op} {Db(w.SqnrDb, ci)}";
        return line;
    }

    /// <summary>Patch grids tried for the advice of an SRAM budget error (only when the budget is exceeded).</summary>
    private static readonly (int Rows, int Cols)[] AdviceGrids = { (2, 2), (3, 3), (4, 4) };

    /// <summary>MCU3003 when the planned arena exceeds <see cref="TinyModelOptions.MaxSramBytes"/>; checked before any file is written.</summary>
    private static void CheckSramBudget(TinyModelOptions options, ModelGraph graph, ExecutionPlan perLayer, ExecutionPlan plan)
    {
        if (options.MaxSramBytes is not { } limit || plan.ArenaBytes <= limit) return;
        // the advice: what the usual patch grids (and the one asked for) would need
        var grids = AdviceGrids.Append((Rows: options.PatchRows, Cols: options.PatchCols)).Distinct()
            .Where(g => g.Rows * g.Cols > 1)
            .Select(g => (Grid: g, Plan: PatchSearch.BestForGrid(graph, g.Rows, g.Cols)))
            .Where(p => p.Plan != null && p.Plan.PeakLiveBytes < perLayer.PeakLiveBytes)
            .Select(p => (Name: $"{p.Grid.Rows}x{p.Grid.Cols}", Patches: p.Grid.Rows * p.Grid.Cols, Plan: p.Plan!))
            .OrderBy(p => p.Patches).ToList();
        var best = grids.Count == 0 ? default : grids.MinBy(p => p.Plan.PeakLiveBytes);
        var fits = grids.FirstOrDefault(p => p.Plan.ArenaBytes <= limit); // the fewest patches (least recomputation) that fit
        string patches = best.Plan == null
            ? "no patch grid up to 4x4 lowers the peak of this model"
            : $"best patch-based peak {best.Plan.PeakLiveBytes:N0} B with PatchGrid=\"{best.Name}\" (arenas: " +
              string.Join(", ", grids.Select(p => $"{p.Name} {p.Plan.ArenaBytes:N0} B")) + ")";
        string advice = fits.Plan != null && fits.Name != $"{options.PatchRows}x{options.PatchCols}"
            ? $"set PatchGrid=\"{fits.Name}\" (arena {fits.Plan.ArenaBytes:N0} B, within the budget), or use a smaller input resolution or width multiplier"
            : "use a smaller input resolution or a smaller width multiplier (fewer channels in the first layers)" +
              (best.Plan == null ? "" : ", together with a PatchGrid") + ", or raise MaxSramBytes if the device has more SRAM";
        var auto = options.AutoPatchGrid ? plan : PatchSearch.Best(graph, options.MaxMacOverhead);
        string search = auto.IsPatchBased
            ? $"PatchGrid=\"auto\" (grids up to {PatchSearch.MaxGridDimension}x{PatchSearch.MaxGridDimension} within MaxMacOverhead {options.MaxMacOverhead:P0}) finds {auto.GridRows}x{auto.GridCols} with an arena of {auto.ArenaBytes:N0} B"
            : $"PatchGrid=\"auto\" finds no patch grid that helps within MaxMacOverhead {options.MaxMacOverhead:P0}";
        throw new CompilerException(ErrorCodes.SramBudgetExceeded,
            $"the planned arena needs {plan.ArenaBytes:N0} bytes of SRAM ({plan.Describe()}), " +
            $"more than MaxSramBytes = {limit:N0} bytes. Per-layer peak {perLayer.PeakLiveBytes:N0} B; {patches}; {search}. To fit: {advice}.",
            options.ModelPath);
    }

    private sealed record Produced(string Staging, string Library, string Header, string Report, string HtmlReport, IReadOnlyList<string> Sources, MemorySummary Summary, string? QdqModel);

    private static Produced Produce(TinyModelOptions options, CompiledModel m, string staging, IDiagnosticSink sink, Action<CompilerDiagnostic> report)
    {
        Directory.CreateDirectory(staging);
        var prefix = options.Prefix;
        string? qdq = null;
        if (options.ExportQdq)
        {
            qdq = Path.Combine(staging, prefix + ".qdq.onnx");
            QdqExporter.Write(m.Int8, qdq, options.ModelPath);
        }
        // The C is generated and compiled in the intermediate folder (so compiler messages point at files that stay);
        // the staging folder receives the deliverables only.
        var intermediate = options.IntermediateDirectory ?? Path.Combine(options.OutputDirectory, $".{prefix}.intermediate");
        var src = CEmitter.Emit(m.Int8, m.Plan, prefix, Path.Combine(intermediate, "src"), options.DequantizeOutput, options.WidePointwiseWeights);
        var arm = new ArmToolchain(options.Toolchain);
        arm.Locate(); // one clear MCU5001 when the toolchain is missing
        var toolchain = options.LibraryBuilder ?? arm;
        var obj = Path.Combine(intermediate, "obj", prefix + ".o");
        Directory.CreateDirectory(Path.GetDirectoryName(obj)!);
        if (File.Exists(obj)) File.Delete(obj);
        foreach (var d in toolchain.CompileObject(src.ModelSourcePath, obj, new[] { Path.GetDirectoryName(src.HeaderPath)! })) report(d);
        var lib = Path.Combine(staging, $"lib{prefix}.a");
        toolchain.Archive(new[] { obj }, lib);
        var header = Path.Combine(staging, prefix + ".h");
        File.Copy(src.HeaderPath, header);
        var sources = new[] { src.HeaderPath, src.ModelSourcePath, src.KernelsPath }.Select(f =>
        {
            var copy = Path.Combine(staging, "src", Path.GetFileName(f));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(f, copy);
            return copy;
        }).ToList();
        var sizes = ElfSizes.Measure(lib);
        CheckFlashBudget(options, sizes.FlashBytes, src.WeightBytes);

        var memory = MemoryReport.Create(Path.GetFileName(options.ModelPath), m.PerLayer, m.Plan, sizes.FlashBytes, src.WeightBytes, sizes.RamBytes);
        if (options.Verify)
            memory.Verification = Verify(options, m, arm, lib, header, Path.Combine(intermediate, "verify"), sink);
        memory.Quantization = m.Quantization;
        var reportPath = Path.Combine(staging, prefix + ".memory.json");
        File.WriteAllText(reportPath, memory.ToJson());
        var htmlPath = Path.Combine(staging, prefix + ".memory.html");
        File.WriteAllText(htmlPath, HtmlReport.Render(prefix, memory, options.MinLayerSqnrDb));

        var v = memory.Verification;
        var summary = new MemorySummary(m.PerLayer.PeakLiveBytes, m.Plan.PeakLiveBytes, m.Plan.ArenaBytes, sizes.FlashBytes, sizes.RamBytes, m.Plan.Describe(),
            v == null ? "not run (Verify=false)"
                : $"{v.Images} image(s) under QEMU Cortex-M7 byte-identical to the C# int8 reference; arena high-water {v.ArenaHighWaterBytes:N0} B, stack {v.StackHighWaterBytes:N0} B",
            QuantizationSummary(options, m.Quantization));
        return new Produced(staging, lib, header, reportPath, htmlPath, sources, summary, qdq);
    }

    /// <summary>MCU5007 when the compiled library exceeds <see cref="TinyModelOptions.MaxFlashBytes"/> (the staging folder is then discarded).</summary>
    private static void CheckFlashBudget(TinyModelOptions options, long flashBytes, long weightBytes)
    {
        if (options.MaxFlashBytes is not { } limit || flashBytes <= limit) return;
        long code = Math.Max(0, flashBytes - weightBytes);
        throw new CompilerException(ErrorCodes.FlashBudgetExceeded,
            $"the library needs {flashBytes:N0} bytes of flash (weights {weightBytes:N0} B, code and parameter tables {code:N0} B), " +
            $"more than MaxFlashBytes = {limit:N0} bytes. To fit: a smaller width multiplier or fewer layers (the weights are " +
            $"{(flashBytes > 0 ? 100.0 * weightBytes / flashBytes : 0):0}% of it), optimisation for size (MCUNetV2OptimizationFlags=-Os) for the code, or raise MaxFlashBytes if the device has more flash.",
            options.ModelPath);
    }

    /// <summary>Runs the library under QEMU on the first calibration samples and requires byte equality with the C# int8 reference.</summary>
    private static MemoryReport.VerificationInfo Verify(TinyModelOptions options, CompiledModel m, ArmToolchain arm, string lib, string header, string work, IDiagnosticSink sink)
    {
        // A pre-quantized model may come without images: bit-exactness is then checked on fixed pseudo-random inputs.
        var inputs = m.CalibrationInputs.Count > 0 ? m.CalibrationInputs.Select(m.Int8.QuantizeInput).ToList() : SyntheticInputs(m.Graph.Input.Shape.Elements, 2);
        int n = options.VerifyImages <= 0 ? inputs.Count : Math.Min(options.VerifyImages, inputs.Count);
        inputs = inputs.Take(n).ToList();
        var expected = inputs.Select(q => Int8Executor.Run(m.Int8, m.Plan, q)).ToList();
        var harness = new QemuHarness(arm, options.Toolchain.QemuPath);
        if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        Directory.CreateDirectory(work);
        var run = harness.Run(lib, header, options.Prefix, inputs.SelectMany(q => q.Select(b => (byte)b)).ToArray(), n, work);
        for (int i = 0; i < n; i++)
        {
            var got = run.Output(i).ToArray();
            var want = expected[i].Select(b => (byte)b).ToArray();
            if (!got.AsSpan().SequenceEqual(want))
                throw new CompilerException(ErrorCodes.VerificationMismatch,
                    $"the Cortex-M7 library's output for '{(i < m.CalibrationSamples.Count ? m.CalibrationSamples[i].Name : $"synthetic input {i}")}' differs from the C# int8 reference " +
                    $"(QEMU [{string.Join(",", got.Select(b => (sbyte)b))}], reference [{string.Join(",", want.Select(b => (sbyte)b))}]). This is a compiler bug: please report it with the model.",
                    options.ModelPath);
        }
        if (run.ArenaHighWaterBytes > m.Plan.ArenaBytes)
            throw new CompilerException(ErrorCodes.VerificationMismatch,
                $"the library wrote {run.ArenaHighWaterBytes} arena bytes, more than the planned {m.Plan.ArenaBytes}. This is a compiler bug: please report it.", options.ModelPath);
        if (m.Plan.InputStaging != null && run.StreamedReads is not > 0)
            throw new CompilerException(ErrorCodes.VerificationMismatch, "the streamed entry point was not exercised under QEMU. This is a compiler bug: please report it.", options.ModelPath);
        sink.Info($"verified under QEMU (mps2-an500, Cortex-M7): {n} input(s) byte-identical to the C# int8 reference" +
                  (run.StreamedReads is { } reads ? $", also through {options.Prefix}_invoke_streamed ({reads:N0} region reads)" : "") +
                  $"; arena high-water {run.ArenaHighWaterBytes:N0} of {m.Plan.ArenaBytes:N0} bytes, stack {run.StackHighWaterBytes:N0} bytes");
        return new MemoryReport.VerificationInfo(n, true, run.ArenaHighWaterBytes, run.StackHighWaterBytes);
    }

    /// <summary>Deterministic int8 inputs over the whole range (for verification only, never for calibration).</summary>
    private static List<sbyte[]> SyntheticInputs(int elements, int count)
    {
        var random = new Random(20211206);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, elements).Select(_ => (sbyte)random.Next(-128, 128)).ToArray()).ToList();
    }
}
