using System.Globalization;
using System.Reflection;
using System.Text;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Emission;

/// <summary>The C sources of one model.</summary>
public sealed record EmittedSources(string HeaderPath, string ModelSourcePath, string KernelsPath, long WeightBytes);

/// <summary>
/// Writes the C99 code of a quantized model under an execution plan: &lt;prefix&gt;.h (API and shape/quantization
/// macros), &lt;prefix&gt;.c (constant weights, parameter tables, static arena, patch regions, the invoke function) and
/// the kernel header it includes.
/// </summary>
public static class CEmitter
{
    public const string KernelsFileName = "mcunet_kernels.h";

    /// <summary>MCU_IM2COL_MAX of the kernels: the largest window (kh x kw x in_c) that mcu_conv_im2col gathers on the stack.</summary>
    private const int ImColumnMax = 256;

    /// <param name="dequantizeOutput">
    /// Also emit &lt;prefix&gt;_dequantize_output and &lt;prefix&gt;_invoke_float, which return the output as float
    /// (the only floating-point code; &lt;prefix&gt;_invoke stays integer-only).
    /// </param>
    /// <param name="wideWeights">Pointwise (and im2col) weights as int16 (PointwiseWeights="int16", <see cref="PointwiseStream.Words"/>).</param>
    public static EmittedSources Emit(QuantizedModel model, ExecutionPlan plan, string prefix, string directory, bool dequantizeOutput = false,
        bool wideWeights = false)
    {
        Directory.CreateDirectory(directory);
        var kernels = Path.Combine(directory, KernelsFileName);
        File.WriteAllText(kernels, ReadRuntime(KernelsFileName));
        var header = Path.Combine(directory, prefix + ".h");
        File.WriteAllText(header, Header(model, plan, prefix, dequantizeOutput));
        var source = Path.Combine(directory, prefix + ".c");
        var (code, weightBytes) = Source(model, plan, prefix, wideWeights);
        if (dequantizeOutput) code += FloatOutputSource(prefix);
        File.WriteAllText(source, code);
        return new EmittedSources(header, source, kernels, weightBytes);
    }

    public static string ReadRuntime(string name)
    {
        using var s = typeof(CEmitter).Assembly.GetManifestResourceStream("Runtime/" + name)
            ?? throw new InvalidOperationException($"runtime source {name} is not embedded");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    private static string Comment(string s) => s.Replace("*/", "* /").Replace("/*", "/ *");

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The float output helpers (DequantizeOutput): the only floating-point code of a model.</summary>
    private static string FloatOutputSource(string prefix)
    {
        var P = prefix.ToUpperInvariant();
        return $$"""

            /* DequantizeOutput: the float output helpers, the only floating-point code (the FPU is used here only). */
            void {{prefix}}_dequantize_output(const int8_t *q, float *out)
            {
                for (int i = 0; i < {{P}}_OUTPUT_BYTES; ++i)
                    out[i] = {{P}}_OUTPUT_SCALE * (float)((int32_t)q[i] - {{P}}_OUTPUT_ZERO_POINT);
            }

            int {{prefix}}_invoke_float(const int8_t *input, float *output)
            {
                static int8_t q[{{P}}_OUTPUT_BYTES];
                int status = {{prefix}}_invoke(input, q);
                if (status == 0)
                    {{prefix}}_dequantize_output(q, output);
                return status;
            }

            """;
    }

    private static string FloatOutputDeclarations(string prefix) => $$"""

            /* DequantizeOutput: out[i] = {{prefix.ToUpperInvariant()}}_OUTPUT_SCALE * (q[i] - {{prefix.ToUpperInvariant()}}_OUTPUT_ZERO_POINT) for the
               {{prefix.ToUpperInvariant()}}_OUTPUT_BYTES values of an output of {{prefix}}_invoke. Uses the FPU (the only float code). */
            void {{prefix}}_dequantize_output(const int8_t *q, float *out);

            /* {{prefix}}_invoke, then the output as {{prefix.ToUpperInvariant()}}_OUTPUT_BYTES floats (an int8 copy is kept in a static buffer);
               returns 0 on success. Not reentrant. */
            int {{prefix}}_invoke_float(const int8_t *input, float *output);

            """;

    private static string StreamedDeclarations(string prefix, ExecutionPlan plan) => $$"""

            /* StreamInput: the input frame need not be in memory. For each of the {{plan.PatchRegions.Count}} patches the model asks for the
               region of the input it needs: rows [y0, y0+h) and columns [x0, x0+w), to be written to dst as h*w*{{prefix.ToUpperInvariant()}}_INPUT_CHANNELS
               int8 values (rows of w pixels, channels last). Return 0, or non-zero to stop ({{prefix}}_invoke_streamed returns it).
               Regions overlap (halos), so a row may be asked for more than once. */
            #define {{prefix.ToUpperInvariant()}}_STREAMED_INPUT 1
            #define {{prefix.ToUpperInvariant()}}_INPUT_REGION_BYTES {{plan.InputStaging!.Bytes}}
            typedef int (*{{prefix}}_read_input_fn)(void *ctx, int y0, int x0, int h, int w, int8_t *dst);

            /* Like {{prefix}}_invoke, with the input read region by region through read(ctx, ...). Same output bytes. */
            int {{prefix}}_invoke_streamed({{prefix}}_read_input_fn read, void *ctx, int8_t *output);

            """;

    private static string Header(QuantizedModel model, ExecutionPlan plan, string prefix, bool dequantizeOutput)
    {
        var P = prefix.ToUpperInvariant();
        var g = model.Graph;
        var sb = new StringBuilder();
        sb.Append($"""
            /* Generated by MCUNetV2.Build. Do not edit. */
            #ifndef {P}_H
            #define {P}_H

            #include <stdint.h>

            #ifdef __cplusplus
            extern "C" {"{"}
            #endif

            /* Schedule: {Comment(plan.Describe())}. */
            #define {P}_ARENA_BYTES {plan.ArenaBytes}
            #define {P}_LAYER_COUNT {g.Layers.Count}

            /* Input: int8, NHWC, real = scale * (q - zero_point). */
            #define {P}_INPUT_HEIGHT {g.Input.Shape.H}
            #define {P}_INPUT_WIDTH {g.Input.Shape.W}
            #define {P}_INPUT_CHANNELS {g.Input.Shape.C}
            #define {P}_INPUT_BYTES {g.Input.Bytes}
            #define {P}_INPUT_SCALE {F(model.InputParams.Scale)}f
            #define {P}_INPUT_ZERO_POINT {model.InputParams.ZeroPoint}

            /* Output: int8, real = scale * (q - zero_point). */
            #define {P}_OUTPUT_BYTES {g.Output.Bytes}
            #define {P}_OUTPUT_SCALE {F(model.OutputParams.Scale)}f
            #define {P}_OUTPUT_ZERO_POINT {model.OutputParams.ZeroPoint}

            /* The static working memory of {prefix}_invoke (no malloc). */
            extern int8_t {prefix}_arena[{P}_ARENA_BYTES];

            /* Runs the model on one input; returns 0 on success. Not reentrant (one arena). */
            int {prefix}_invoke(const int8_t *input, int8_t *output);
            {(plan.InputStaging != null ? StreamedDeclarations(prefix, plan) : "")}{(dequantizeOutput ? FloatOutputDeclarations(prefix) : "")}
            #ifdef __cplusplus
            {"}"}
            #endif

            #endif /* {P}_H */

            """);
        return sb.ToString();
    }

    private sealed class Writer
    {
        public readonly StringBuilder Data = new();
        public long WeightBytes;

        public void Array<T>(string type, string name, IReadOnlyList<T> values, int bytesPerValue)
        {
            WeightBytes += (long)values.Count * bytesPerValue;
            Data.Append($"static const {type} {name}[{values.Count}] __attribute__((aligned(4))) = {{");
            for (int i = 0; i < values.Count; i++)
            {
                if (i % 24 == 0) Data.Append("\n    ");
                Data.Append(Convert.ToString(values[i], CultureInfo.InvariantCulture)).Append(',');
            }
            Data.Append("\n};\n");
        }
    }

    private static (string, long) Source(QuantizedModel model, ExecutionPlan plan, string prefix, bool wideWeights)
    {
        var g = model.Graph;
        int K = plan.PatchLayerCount;
        var stageIndex = new Dictionary<Tensor, int> { [g.Input] = 0 };
        for (int i = 0; i < K; i++) stageIndex[g.Layers[i].Output] = i + 1;

        string Full(Tensor t) => $"(mcu_region){{0, 0, {t.Shape.H}, {t.Shape.W}}}";
        // The input's buffer and region are placeholders: the caller's frame in <prefix>_invoke, the staging buffer
        // holding the patch's input region in <prefix>_invoke_streamed. A tensor without a buffer is a pointwise
        // convolution's output that its residual Add computes itself.
        const string InputBuffer = "\u0001input\u0001", InputRegion = "\u0001input region\u0001";
        string Buf(Tensor t) => t == g.Input ? InputBuffer : t == g.Output ? "output"
            : plan.BufferOf.TryGetValue(t, out var b) ? $"({prefix}_arena + {b.Offset})" : "NULL";
        string BufRegion(Tensor t) => t == g.Input ? InputRegion
            : plan.BufferOf.TryGetValue(t, out var b) && b.PerPatch ? $"r[{stageIndex[t]}]" : Full(t);
        string Compute(int i) => i < K ? $"r[{i + 1}]" : Full(g.Layers[i].Output);

        var w = new Writer();
        var calls = new StringBuilder();
        for (int i = 0; i < g.Layers.Count; i++)
        {
            var l = g.Layers[i];
            var q = model.Layers[l];
            string id = $"{prefix}_l{i}";
            var ind = i < K ? "        " : "    ";
            calls.Append($"{ind}/* {i}: {l.Op} {l.Inputs[0].Shape} -> {l.Output.Shape} ({Comment(l.Name)}) */\n");
            string x = Buf(l.Inputs[0]), xr = BufRegion(l.Inputs[0]), y = Buf(l.Output), yr = BufRegion(l.Output);
            var kp = plan.KernelOf(i);
            string Scratch() => $"({prefix}_arena + {kp.Scratch!.Offset})";
            switch (l)
            {
                case Conv2D conv:
                {
                    var qc = (QuantizedConv)q;
                    string kernel = conv.IsPointwise ? "mcu_pointwise"
                        : conv.IsDepthwise && conv.Window.KernelH * conv.Window.KernelW <= DepthwiseInPlace.MaxTaps ? "mcu_depthwise"
                        : conv.Groups == 1 && conv.Window.KernelH * conv.Window.KernelW * conv.InChannels <= ImColumnMax ? "mcu_conv_im2col" : "mcu_conv";
                    string tables;
                    if (kernel is "mcu_pointwise" or "mcu_conv_im2col")
                    {
                        int highWord = HighWordRequantization.Flag(qc);
                        int depth = conv.Window.KernelH * conv.Window.KernelW * conv.InChannels;
                        w.Array("int32_t", id + "_w", PointwiseStream.Words(qc, depth, conv.OutChannels, highWord != 0, wideWeights), 4);
                        tables = $"(const int8_t *){id}_w, NULL, NULL, NULL, {highWord}";
                        tables += kp.Columns is { } columns ? $", (uint32_t *)({prefix}_arena + {columns.Offset})" : ", NULL";
                    }
                    else
                    {
                        sbyte[] weights = kernel == "mcu_depthwise" ? DepthwiseHwc(qc.Weights, conv) : qc.Weights;
                        // in place, the depthwise kernel folds the zero point over the whole window (it gathers in_zp
                        // into the taps outside the input)
                        bool inPlace = kernel == "mcu_depthwise" && kp.InPlaceOver != null;
                        EmitConvTables(w, id, weights, inPlace ? FoldZeroPoint(qc) : qc.Bias, qc);
                        tables = $"{id}_w, {id}_b, {id}_m, {id}_s, {HighWordRequantization.Flag(qc)}, NULL";
                    }
                    var win = conv.Window;
                    w.Data.Append($"static const mcu_conv_params {id} = {{ {conv.Inputs[0].Shape.H}, {conv.Inputs[0].Shape.W}, {conv.InChannels}, {conv.OutChannels}, {conv.Groups}, " +
                        $"{win.KernelH}, {win.KernelW}, {win.StrideH}, {win.StrideW}, {win.DilationH}, {win.DilationW}, {win.Pad.Top}, {win.Pad.Left}, " +
                        $"{qc.InputZeroPoint}, {qc.OutputZeroPoint}, {qc.ActMin}, {qc.ActMax}, {tables} }};\n\n");
                    if (kp.FusedIntoAdd is { } add)
                        calls.Append($"{ind}/* computed pixel by pixel inside layer {add} (residual add) */\n");
                    else if (kp.InPlaceOver != null && kernel == "mcu_depthwise" && kp.DepthwiseRingSlots > 0)
                        calls.Append($"{ind}{(kp.DepthwiseCompact ? "mcu_depthwise3x3_compact_inplace" : "mcu_depthwise3x3_inplace")}(&{id}, {y}, {xr}, {yr}, {Scratch()}, {kp.DepthwiseRingSlots});\n");
                    else if (kp.InPlaceOver != null && kernel == "mcu_depthwise")
                        calls.Append($"{ind}mcu_depthwise_inplace(&{id}, {y}, {xr}, {yr}, {Scratch()}, {kp.ScratchRows});\n");
                    else
                        calls.Append($"{ind}{kernel}(&{id}, {x}, {xr}, {y}, {yr}, {Compute(i)});\n");
                    break;
                }
                case FullyConnected:
                {
                    var qc = (QuantizedConv)q;
                    EmitConvTables(w, id, qc.Weights, FoldZeroPoint(qc), qc);
                    var fc = (FullyConnected)l;
                    w.Data.Append($"static const mcu_conv_params {id} = {{ 1, 1, {fc.InFeatures}, {fc.OutFeatures}, 1, 1, 1, 1, 1, 1, 1, 0, 0, " +
                        $"{qc.InputZeroPoint}, {qc.OutputZeroPoint}, {qc.ActMin}, {qc.ActMax}, {id}_w, {id}_b, {id}_m, {id}_s, 0, NULL }};\n\n");
                    calls.Append($"{ind}mcu_fully_connected(&{id}, {x}, {y});\n");
                    break;
                }
                case Add add:
                {
                    var qa = (QuantizedAdd)q;
                    w.Data.Append($"static const mcu_add_params {id} = {{ {add.Output.Shape.C}, {qa.ZeroPointA}, {qa.ZeroPointB}, " +
                        $"{qa.RequantA.Multiplier}, {qa.RequantB.Multiplier}, {qa.RequantOut.Multiplier}, {qa.OutputZeroPoint}, {qa.ActMin}, {qa.ActMax}, " +
                        $"{qa.RequantA.Shift}, {qa.RequantB.Shift}, {qa.RequantOut.Shift}, {qa.SignB}, {(add.BroadcastsB ? 1 : 0)} }};\n\n");
                    string b = Buf(l.Inputs[1]), br = BufRegion(l.Inputs[1]);
                    if (kp.FusedConv is { } c)
                    {
                        var conv = g.Layers[c];
                        bool convIsA = l.Inputs[0] == conv.Output;
                        var skip = l.Inputs[convIsA ? 1 : 0];
                        calls.Append($"{ind}mcu_pointwise_add(&{prefix}_l{c}, &{id}, {(convIsA ? 1 : 0)}, {Buf(conv.Inputs[0])}, {BufRegion(conv.Inputs[0])}, " +
                            $"{Buf(skip)}, {BufRegion(skip)}, {y}, {yr}, {Compute(i)}, {Scratch()});\n");
                    }
                    else
                        calls.Append($"{ind}mcu_add(&{id}, {x}, {xr}, {b}, {br}, {y}, {yr}, {Compute(i)});\n");
                    break;
                }
                case PoolLayer pool:
                {
                    var win = pool.Window;
                    w.Data.Append($"static const mcu_pool_params {id} = {{ {l.Inputs[0].Shape.H}, {l.Inputs[0].Shape.W}, {l.Output.Shape.C}, " +
                        $"{win.KernelH}, {win.KernelW}, {win.StrideH}, {win.StrideW}, {win.DilationH}, {win.DilationW}, " +
                        $"{win.Pad.Top}, {win.Pad.Left}, {win.Pad.Bottom}, {win.Pad.Right}, {(win.CountIncludePad ? 1 : 0)}, {(q is QuantizedAveragePool qp ? qp.ZeroPoint : 0)} }};\n\n");
                    calls.Append($"{ind}{(l is AveragePool ? "mcu_average_pool" : "mcu_max_pool")}(&{id}, {x}, {xr}, {y}, {yr}, {Compute(i)});\n");
                    break;
                }
                case UnaryElementwise:
                {
                    w.Array("int8_t", id + "_table", ((QuantizedLookup)q).Table, 1);
                    w.Data.Append('\n');
                    calls.Append($"{ind}mcu_lookup({id}_table, {l.Output.Shape.C}, {x}, {xr}, {y}, {yr}, {Compute(i)});\n");
                    break;
                }
                case ChannelPRelu:
                {
                    var qp = (QuantizedChannelPRelu)q;
                    w.Array("int32_t", id + "_m", qp.Negative.Select(m => m.Multiplier).ToArray(), 4);
                    w.Array("int8_t", id + "_s", qp.Negative.Select(m => (sbyte)m.Shift).ToArray(), 1);
                    w.Array("int8_t", id + "_sign", qp.NegativeSign.Select(v => (sbyte)v).ToArray(), 1);
                    w.Data.Append($"static const mcu_prelu_params {id} = {{ {l.Output.Shape.C}, {qp.InputZeroPoint}, {qp.OutputZeroPoint}, " +
                        $"{qp.Positive.Multiplier}, {qp.Positive.Shift}, {id}_m, {id}_s, {id}_sign }};\n\n");
                    calls.Append($"{ind}mcu_channel_prelu(&{id}, {x}, {xr}, {y}, {yr}, {Compute(i)});\n");
                    break;
                }
                case Mul mul:
                {
                    var qm = (QuantizedMul)q;
                    w.Data.Append($"static const mcu_mul_params {id} = {{ {l.Output.Shape.C}, {qm.ZeroPointA}, {qm.ZeroPointB}, " +
                        $"{qm.Requant.Multiplier}, {qm.OutputZeroPoint}, {qm.Requant.Shift}, {(mul.BroadcastsB ? 1 : 0)} }};\n\n");
                    string b = Buf(l.Inputs[1]), br = BufRegion(l.Inputs[1]);
                    calls.Append($"{ind}mcu_mul(&{id}, {x}, {xr}, {b}, {br}, {y}, {yr}, {Compute(i)});\n");
                    break;
                }
                case Concat:
                {
                    var qc = (QuantizedConcat)q;
                    int offset = 0;
                    for (int j = 0; j < l.Inputs.Count; j++)
                    {
                        var t = l.Inputs[j];
                        w.Data.Append($"static const mcu_concat_params {id}_{j} = {{ {t.Shape.C}, {l.Output.Shape.C}, {offset}, " +
                            $"{qc.ZeroPoints[j]}, {qc.Requant[j].Multiplier}, {qc.OutputZeroPoint}, {qc.Requant[j].Shift} }};\n");
                        calls.Append($"{ind}mcu_concat(&{id}_{j}, {Buf(t)}, {BufRegion(t)}, {y}, {yr}, {Compute(i)});\n");
                        offset += t.Shape.C;
                    }
                    w.Data.Append('\n');
                    break;
                }
                case Softmax:
                {
                    var qs = (QuantizedSoftmax)q;
                    w.Array("int32_t", id + "_table", qs.ExpTable, 4);
                    w.Data.Append('\n');
                    calls.Append($"{ind}mcu_softmax({id}_table, {x}, {y}, {l.Output.Shape.H * l.Output.Shape.W}, {l.Output.Shape.C});\n");
                    break;
                }
                case Relayout r:
                {
                    w.Data.Append($"static const mcu_relayout_params {id} = {{ {r.Dims.Length}, {{ {string.Join(", ", r.Dims)} }}, {{ {string.Join(", ", r.InputStrides)} }} }};\n\n");
                    calls.Append($"{ind}mcu_relayout(&{id}, {x}, {y});\n");
                    break;
                }
                default:
                    throw new NotSupportedException(l.Op);
            }
            calls.Append($"{ind}MCU_PROFILE_MARK({prefix}_profile, {i});\n");
            if (i == K - 1) calls.Append("    }\n\n");
        }

        var sb = new StringBuilder();
        sb.Append($"/* Generated by MCUNetV2.Build. Do not edit. */\n/* Schedule: {Comment(plan.Describe())}. */\n");
        sb.Append($"#include \"{prefix}.h\"\n");
        // the kernels carry the code of the 5x5 and 7x7 depthwise windows only for models that have them
        foreach (int k in new[] { 5, 7 })
            if (g.Layers.OfType<Conv2D>().Any(c => c.IsDepthwise && c.Window.KernelH == k && c.Window.KernelW == k))
                sb.Append($"#define MCU_DW_KERNEL_{k}X{k} 1\n");
        if (wideWeights) sb.Append("#define MCU_POINTWISE_WEIGHTS16 1 /* PointwiseWeights=\"int16\" */\n");
        sb.Append($"#include \"{KernelsFileName}\"\n\n");
        sb.Append($"int8_t {prefix}_arena[{prefix.ToUpperInvariant()}_ARENA_BYTES] __attribute__((aligned(16)));\n\n");
        sb.Append($"#ifdef MCU_PROFILE\n/* Benchmarks: timer ticks spent in each layer (added up over patches and calls). */\nuint32_t {prefix}_profile[{g.Layers.Count}];\n#endif\n\n");
        sb.Append(w.Data);
        if (K > 0)
        {
            sb.Append($"/* Per patch: region of the input (0) and of the output of each of the first {K} layers. */\n");
            sb.Append($"static const mcu_region {prefix}_patch_regions[{plan.PatchRegions.Count}][{K + 1}] = {{\n");
            foreach (var reg in plan.PatchRegions)
            {
                var row = stageIndex.OrderBy(kv => kv.Value).Select(kv => reg.GetValueOrDefault(kv.Key)).Select(r => $"{{{r.Y0}, {r.X0}, {r.H}, {r.W}}}");
                sb.Append("    { ").Append(string.Join(", ", row)).Append(" },\n");
            }
            sb.Append("};\n\n");
        }
        void Invoke(string signature, string body, string? declarations = null)
        {
            sb.Append(signature).Append("\n{\n").Append(declarations).Append("    MCU_PROFILE_START();\n");
            if (K > 0)
            {
                sb.Append($"    for (int p = 0; p < {plan.PatchRegions.Count}; ++p) {{\n");
                sb.Append($"        const mcu_region *r = {prefix}_patch_regions[p];\n");
            }
            sb.Append(body).Append("    return 0;\n}\n");
        }
        string body = calls.ToString();
        Invoke($"int {prefix}_invoke(const int8_t *input, int8_t *output)",
            body.Replace(InputBuffer, "input").Replace(InputRegion, Full(g.Input)));
        if (plan.InputStaging is { } staging)
        {
            string stage = $"({prefix}_arena + {staging.Offset})";
            sb.Append('\n');
            Invoke($"int {prefix}_invoke_streamed({prefix}_read_input_fn read, void *ctx, int8_t *output)",
                $"        if ((status = read(ctx, r[0].y0, r[0].x0, r[0].h, r[0].w, {stage})) != 0) return status;\n" +
                body.Replace(InputBuffer, stage).Replace(InputRegion, "r[0]"),
                "    int status;\n");
        }
        return (sb.ToString(), w.WeightBytes);
    }

    private static void EmitConvTables(Writer w, string id, sbyte[] weights, int[] bias, QuantizedConv qc)
    {
        w.Array("int8_t", id + "_w", weights, 1);
        w.Array("int32_t", id + "_b", bias, 4);
        w.Array("int32_t", id + "_m", qc.Requant.Select(r => r.Multiplier).ToArray(), 4);
        w.Array("int8_t", id + "_s", qc.Requant.Select(r => (sbyte)r.Shift).ToArray(), 1);
    }

    /// <summary>bias - in_zp * sum(w): lets pointwise and fully connected kernels use plain x * w products.</summary>
    internal static int[] FoldZeroPoint(QuantizedConv q)
    {
        int n = q.Bias.Length, per = q.Weights.Length / n;
        var r = new int[n];
        for (int o = 0; o < n; o++)
        {
            long s = 0;
            for (int i = 0; i < per; i++) s += q.Weights[o * per + i];
            r[o] = checked((int)(q.Bias[o] - q.InputZeroPoint * s));
        }
        return r;
    }

    /// <summary>[c][kh][kw] to [kh][kw][c] so that the depthwise kernel reads channels contiguously.</summary>
    private static sbyte[] DepthwiseHwc(sbyte[] w, Conv2D l)
    {
        int c = l.OutChannels, k = l.Window.KernelH * l.Window.KernelW;
        var r = new sbyte[w.Length];
        for (int ch = 0; ch < c; ch++)
            for (int t = 0; t < k; t++) r[t * c + ch] = w[ch * k + t];
        return r;
    }
}
