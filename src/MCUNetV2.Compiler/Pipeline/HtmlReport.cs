using System.Globalization;
using System.Net;
using System.Text;
using MCUNetV2.Compiler.Planning;

namespace MCUNetV2.Compiler.Pipeline;

/// <summary>
/// &lt;prefix&gt;.memory.html: the memory report and the quantization analysis as one standalone HTML page (inline CSS
/// and an inline SVG chart; no script, no network access), to open in any browser.
/// </summary>
public static class HtmlReport
{
    private static readonly CultureInfo Ci = CultureInfo.InvariantCulture;

    /// <param name="prefix">The model's prefix (the page title).</param>
    /// <param name="memory">The report also written as &lt;prefix&gt;.memory.json, with its quantization section.</param>
    /// <param name="minLayerSqnrDb">The MinLayerSqnr threshold, drawn in the chart; null = none.</param>
    public static string Render(string prefix, MemoryReport memory, double? minLayerSqnrDb)
    {
        var q = memory.Quantization;
        var sqnr = new Dictionary<int, MemoryReport.QuantizationLayer>();
        foreach (var l in q?.Layers ?? Array.Empty<MemoryReport.QuantizationLayer>()) sqnr[l.Index] = l;
        int worst = q?.WorstLayer?.Index ?? -1;
        var names = memory.Layers.Select(l => l.Name).ToList();

        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
          .Append(Ci, $"<title>{E(prefix)}: MCUNetV2 model report</title>\n")
          .Append("""
            <style>
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
            h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
            table { border-collapse: collapse; font-size: 13px; }
            th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
            td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
            tr.worst td { background: #fde2e1; font-weight: bold; }
            tr.low td.sqnr { color: #b00020; }
            .summary th { background: #f3f3f3; width: 220px; }
            .layers th { background: #f3f3f3; position: sticky; top: 0; }
            .note { color: #555; font-size: 13px; }
            .name { max-width: 420px; overflow-wrap: anywhere; }
            </style>
            </head>
            <body>

            """);
        sb.Append(Ci, $"<h1>{E(prefix)} &mdash; {E(memory.Model)}</h1>\n");

        // summary
        sb.Append("<h2>Summary</h2>\n<table class=\"summary\">\n");
        Row(sb, "per-layer peak SRAM", Bytes(memory.PeakSramBytes.PerLayer));
        Row(sb, "patch-based peak SRAM", Bytes(memory.PeakSramBytes.PatchBased));
        Row(sb, "arena", $"{Bytes(memory.ArenaBytes)}: {memory.ArenaGapBytes.ToString("N0", Ci)} B above the lower bound (the peak of live bytes)");
        Row(sb, "with the input frame in SRAM", $"{Bytes(memory.PeakSramBytes.PatchBasedWithInputFrame)} (per-layer {Bytes(memory.PeakSramBytes.PerLayerWithInputFrame)}; input frame {memory.PeakSramBytes.InputFrame.ToString("N0", Ci)} B, counted above as the caller's streamed memory)");
        Row(sb, "flash", $"{Bytes(memory.FlashBytes.Total)} (weights {memory.FlashBytes.Weights.ToString("N0", Ci)} B, code and tables {memory.FlashBytes.Code.ToString("N0", Ci)} B)");
        Row(sb, "RAM", Bytes(memory.RamBytes));
        Row(sb, "MACs", $"{memory.Macs.PatchBased.ToString("N0", Ci)} executed ({memory.Macs.PerLayer.ToString("N0", Ci)} layer by layer)");
        Row(sb, "schedule", memory.Schedule.Description);
        var v = memory.Verification;
        Row(sb, "verified", v == null ? "not run (Verify=false)"
            : $"{v.Images} input(s) under QEMU Cortex-M7 byte-identical to the C# int8 reference; arena high-water {v.ArenaHighWaterBytes.ToString("N0", Ci)} B, stack {v.StackHighWaterBytes.ToString("N0", Ci)} B");
        if (q != null)
        {
            Row(sb, "calibration", q.Method + (q.Percentile is { } p ? $" ({p.ToString("0.####", Ci)} percentile)" : "") + (q.BiasCorrection ? ", bias correction" : ", no bias correction"));
            if (q.Analyzed)
            {
                Row(sb, "output SQNR", Db(q.OutputSqnrDb) + $" (int8 vs float over {q.Samples} calibration sample(s))");
                Row(sb, "top-1 agreement", $"{q.Top1Agreements}/{q.Samples}");
                if (q.WorstLayer is { } w) Row(sb, "worst layer", $"#{w.Index} {w.Name} ({w.Op}): {Db(w.SqnrDb)}");
            }
            if (q.Note != null) Row(sb, "quantization note", q.Note);
        }
        sb.Append("</table>\n");

        sb.Append("<h2>Memory per layer</h2>\n<p class=\"note\">Bytes of SRAM live while each layer runs (int8 activations, scratch included; the network input is the caller's). " +
                  "Grey: layer-by-layer inference; blue: the chosen schedule (patch-based layers shaded darker).</p>\n");
        MemoryChart(sb, memory);
        sb.Append("<h2>Arena layout</h2>\n<p class=\"note\">Each buffer of the chosen schedule as a box: from the layer that writes it to the last layer that reads it (across), at its offset in the arena (down). " +
                  "Boxes that share rows never live at the same time. Orange: kernel scratch; dark blue: per-patch buffers.</p>\n");
        ArenaChart(sb, memory);
        if (memory.Redistribution is { } rd)
        {
            sb.Append("<h2>Network redistribution</h2>\n").Append(Ci, $"<p>{E(rd.Advice)}</p>\n");
            sb.Append("<table class=\"layers\">\n<tr><th class=\"n\">#</th><th>layer</th><th>op</th><th>kernel</th><th class=\"n\">stride</th><th class=\"n\">halo rows added</th><th class=\"n\">MACs</th><th class=\"n\">recomputed MACs</th><th class=\"n\">share</th></tr>\n");
            foreach (var l in rd.Layers)
                sb.Append(Ci, $"<tr><td class=\"n\">{l.Index}</td><td class=\"name\" title=\"{E(l.Name)}\">{E(TinyModelBuilder.ShortLayerName(l.Name, names))}</td><td>{E(l.Op)}</td><td>{l.Kernel[0]}x{l.Kernel[1]}</td>")
                  .Append(Ci, $"<td class=\"n\">{l.Stride}</td><td class=\"n\">{l.HaloRows}</td><td class=\"n\">{l.Macs.ToString("N0", Ci)}</td><td class=\"n\">{l.ExtraMacs.ToString("N0", Ci)}</td><td class=\"n\">{l.ShareOfExtraMacs.ToString("P1", Ci)}</td></tr>\n");
            sb.Append("</table>\n");
        }

        // chart
        if (q is { Analyzed: true, Layers.Count: > 0 })
        {
            sb.Append("<h2>Per-layer SQNR (int8 vs float)</h2>\n");
            sb.Append("<p class=\"note\">Higher is better. Red: the worst layer. ")
              .Append(minLayerSqnrDb is { } t ? $"Dashed line: MinLayerSqnr = {t.ToString("0.###", Ci)} dB. " : "")
              .Append("A layer without error is drawn at the top of the scale.</p>\n");
            Chart(sb, q.Layers!, worst, minLayerSqnrDb);
        }

        // layer table
        sb.Append("<h2>Layers</h2>\n<table class=\"layers\">\n<tr><th class=\"n\">#</th><th>layer</th><th>op</th><th>output (HxWxC)</th><th class=\"n\">MACs</th>")
          .Append("<th class=\"n\">live bytes (per-layer)</th><th class=\"n\">live bytes (schedule)</th><th class=\"n\">SQNR dB</th><th class=\"n\">max |error|</th><th class=\"n\">clipped %</th></tr>\n");
        foreach (var l in memory.Layers)
        {
            sqnr.TryGetValue(l.Index, out var e);
            bool low = e != null && minLayerSqnrDb is { } th && e.SqnrDb is { } d && d < th;
            var cls = l.Index == worst ? " class=\"worst\"" : low ? " class=\"low\"" : "";
            sb.Append(Ci, $"<tr{cls}><td class=\"n\">{l.Index}</td><td class=\"name\" title=\"{E(l.Name)}\">{E(TinyModelBuilder.ShortLayerName(l.Name, names))}</td><td>{E(l.Op)}{(l.PerPatch ? " (patch)" : "")}</td>")
              .Append(Ci, $"<td>{string.Join("x", l.OutputShape)}</td><td class=\"n\">{l.Macs.ToString("N0", Ci)}</td>")
              .Append(Ci, $"<td class=\"n\">{l.LiveBytesPerLayer.ToString("N0", Ci)}</td><td class=\"n\">{l.LiveBytesPatchBased.ToString("N0", Ci)}</td>")
              .Append(Ci, $"<td class=\"n sqnr\">{(e == null ? "" : e.SqnrDb is { } s ? s.ToString("0.0", Ci) : "exact")}</td>")
              .Append(Ci, $"<td class=\"n\">{(e == null ? "" : e.MaxAbsError.ToString("G4", Ci))}</td><td class=\"n\">{(e == null ? "" : e.ClippedPercent.ToString("0.###", Ci))}</td></tr>\n");
        }
        sb.Append("</table>\n<p class=\"note\">Generated by MCUNetV2.Build. The same figures are in the JSON report beside this file.</p>\n</body>\n</html>\n");
        return sb.ToString();
    }

    /// <summary>One bar per layer, in graph order; the scale is 0 to the largest finite SQNR (at least 40 dB), rounded up to 10 dB.</summary>
    private static void Chart(StringBuilder sb, IReadOnlyList<MemoryReport.QuantizationLayer> layers, int worst, double? threshold)
    {
        const int left = 44, top = 12, height = 240, bottom = 36, maxWidth = 1100;
        double bar = Math.Clamp((double)(maxWidth - left) / layers.Count, 3, 18);
        double width = left + bar * layers.Count + 8;
        double finiteMax = layers.Select(l => l.SqnrDb ?? 0).Append(threshold ?? 0).Append(40).Max();
        double scaleMax = Math.Ceiling(finiteMax / 10) * 10;
        double Y(double db) => top + height * (1 - Math.Clamp(db, 0, scaleMax) / scaleMax);
        sb.Append(Ci, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:0}\" height=\"{top + height + bottom}\" viewBox=\"0 0 {width:0} {top + height + bottom}\" role=\"img\" aria-label=\"per-layer SQNR in dB\" font-family=\"sans-serif\" font-size=\"11\">\n");
        for (double g = 0; g <= scaleMax; g += 10)
            sb.Append(Ci, $"<line x1=\"{left}\" y1=\"{Y(g):0.#}\" x2=\"{width - 4:0}\" y2=\"{Y(g):0.#}\" stroke=\"#ddd\"/><text x=\"{left - 6}\" y=\"{Y(g) + 4:0.#}\" text-anchor=\"end\">{g:0}</text>\n");
        sb.Append(Ci, $"<text x=\"12\" y=\"{top + height / 2}\" transform=\"rotate(-90 12 {top + height / 2})\" text-anchor=\"middle\">SQNR (dB)</text>\n");
        for (int i = 0; i < layers.Count; i++)
        {
            var l = layers[i];
            double db = l.SqnrDb ?? scaleMax, x = left + i * bar, y = Y(db);
            var color = l.Index == worst ? "#d62728" : threshold is { } t && db < t ? "#ff9896" : "#4c78a8";
            sb.Append(Ci, $"<rect x=\"{x + 0.5:0.##}\" y=\"{y:0.##}\" width=\"{Math.Max(1, bar - 1):0.##}\" height=\"{top + height - y:0.##}\" fill=\"{color}\">")
              .Append(Ci, $"<title>#{l.Index} {E(l.Name)} ({E(l.Op)}): {(l.SqnrDb is { } s ? s.ToString("0.0", Ci) + " dB" : "exact")}</title></rect>\n");
            if (l.Index % 5 == 0)
                sb.Append(Ci, $"<text x=\"{x + bar / 2:0.##}\" y=\"{top + height + 14}\" text-anchor=\"middle\">{l.Index}</text>\n");
        }
        if (threshold is { } th && th > 0)
            sb.Append(Ci, $"<line x1=\"{left}\" y1=\"{Y(th):0.#}\" x2=\"{width - 4:0}\" y2=\"{Y(th):0.#}\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>\n");
        sb.Append(Ci, $"<text x=\"{left + (width - left) / 2:0}\" y=\"{top + height + 30}\" text-anchor=\"middle\">layer (graph order)</text>\n</svg>\n");
    }

    /// <summary>Two bars per layer: live bytes layer by layer (grey) and in the chosen schedule (blue), on one linear scale.</summary>
    private static void MemoryChart(StringBuilder sb, MemoryReport memory)
    {
        var layers = memory.Layers;
        if (layers.Count == 0) return;
        const int left = 70, top = 12, height = 220, bottom = 36, maxWidth = 1100;
        double bar = Math.Clamp((double)(maxWidth - left) / layers.Count, 4, 22);
        double width = left + bar * layers.Count + 8;
        long max = Math.Max(1, layers.Max(l => Math.Max(l.LiveBytesPerLayer, l.LiveBytesPatchBased)));
        double Y(long b) => top + height * (1 - (double)b / max);
        sb.Append(Ci, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:0}\" height=\"{top + height + bottom}\" viewBox=\"0 0 {width:0} {top + height + bottom}\" role=\"img\" aria-label=\"live bytes per layer\" font-family=\"sans-serif\" font-size=\"11\">\n");
        for (int k = 0; k <= 4; k++)
        {
            long v = max * k / 4;
            sb.Append(Ci, $"<line x1=\"{left}\" y1=\"{Y(v):0.#}\" x2=\"{width - 4:0}\" y2=\"{Y(v):0.#}\" stroke=\"#ddd\"/><text x=\"{left - 6}\" y=\"{Y(v) + 4:0.#}\" text-anchor=\"end\">{(v / 1024.0).ToString("0.#", Ci)} KiB</text>\n");
        }
        for (int i = 0; i < layers.Count; i++)
        {
            var l = layers[i];
            double x = left + i * bar, half = Math.Max(1, bar / 2 - 0.5);
            sb.Append(Ci, $"<rect x=\"{x + 0.5:0.##}\" y=\"{Y(l.LiveBytesPerLayer):0.##}\" width=\"{half:0.##}\" height=\"{top + height - Y(l.LiveBytesPerLayer):0.##}\" fill=\"#bbb\"><title>#{l.Index} {E(l.Name)} ({E(l.Op)}): {l.LiveBytesPerLayer.ToString("N0", Ci)} B layer by layer</title></rect>")
              .Append(Ci, $"<rect x=\"{x + 0.5 + half:0.##}\" y=\"{Y(l.LiveBytesPatchBased):0.##}\" width=\"{half:0.##}\" height=\"{top + height - Y(l.LiveBytesPatchBased):0.##}\" fill=\"{(l.PerPatch ? "#1f4e79" : "#4c78a8")}\"><title>#{l.Index} {E(l.Name)} ({E(l.Op)}): {l.LiveBytesPatchBased.ToString("N0", Ci)} B in the schedule{(l.PerPatch ? " (per patch)" : "")}</title></rect>\n");
            if (l.Index % 5 == 0)
                sb.Append(Ci, $"<text x=\"{x + bar / 2:0.##}\" y=\"{top + height + 14}\" text-anchor=\"middle\">{l.Index}</text>\n");
        }
        sb.Append(Ci, $"<text x=\"{left + (width - left) / 2:0}\" y=\"{top + height + 30}\" text-anchor=\"middle\">layer (graph order)</text>\n</svg>\n");
    }

    /// <summary>The arena: one box per buffer, lifetime across (layers), offset and size down (bytes).</summary>
    private static void ArenaChart(StringBuilder sb, MemoryReport memory)
    {
        if (memory.Buffers.Count == 0 || memory.ArenaBytes == 0) return;
        const int left = 70, top = 12, height = 260, bottom = 36, maxWidth = 1100;
        int steps = Math.Max(1, memory.Layers.Count);
        double step = Math.Clamp((double)(maxWidth - left) / steps, 4, 22);
        double width = left + step * steps + 8;
        double Y(long offset) => top + height * (double)offset / memory.ArenaBytes;
        sb.Append(Ci, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:0}\" height=\"{top + height + bottom}\" viewBox=\"0 0 {width:0} {top + height + bottom}\" role=\"img\" aria-label=\"arena layout\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append(Ci, $"<rect x=\"{left}\" y=\"{top}\" width=\"{step * steps:0.##}\" height=\"{height}\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n");
        for (int k = 0; k <= 4; k++)
        {
            long v = memory.ArenaBytes * k / 4;
            sb.Append(Ci, $"<text x=\"{left - 6}\" y=\"{Y(v) + 4:0.#}\" text-anchor=\"end\">{(v / 1024.0).ToString("0.#", Ci)} KiB</text>\n");
        }
        foreach (var b in memory.Buffers.OrderBy(b => b.Offset))
        {
            bool scratch = b.Tensor.StartsWith("scratch of ", StringComparison.Ordinal);
            var fill = scratch ? "#f58518" : b.PerPatch ? "#1f4e79" : "#4c78a8";
            double x = left + b.FirstLayer * step, w = (b.LastLayer - b.FirstLayer + 1) * step;
            sb.Append(Ci, $"<rect x=\"{x:0.##}\" y=\"{Y(b.Offset):0.##}\" width=\"{w:0.##}\" height=\"{Math.Max(1, Y(b.Offset + b.Bytes) - Y(b.Offset)):0.##}\" fill=\"{fill}\" fill-opacity=\"0.8\" stroke=\"#fff\" stroke-width=\"0.5\">")
              .Append(Ci, $"<title>{E(b.Tensor)}: {b.Bytes.ToString("N0", Ci)} B at offset {b.Offset.ToString("N0", Ci)}, layers {b.FirstLayer}-{b.LastLayer}{(b.PerPatch ? " (per patch)" : "")}</title></rect>\n");
        }
        for (int i = 0; i < steps; i += 5)
            sb.Append(Ci, $"<text x=\"{left + i * step + step / 2:0.##}\" y=\"{top + height + 14}\" text-anchor=\"middle\">{i}</text>\n");
        sb.Append(Ci, $"<text x=\"{left + (width - left) / 2:0}\" y=\"{top + height + 30}\" text-anchor=\"middle\">layer (graph order)</text>\n</svg>\n");
    }

    private static void Row(StringBuilder sb, string label, string value) =>
        sb.Append(Ci, $"<tr><th>{E(label)}</th><td>{E(value)}</td></tr>\n");

    private static string Bytes(long b) => $"{b.ToString("N0", Ci)} B ({(b / 1024.0).ToString("0.0", Ci)} KiB)";

    private static string Db(double? db) => db is { } d ? d.ToString("0.0", Ci) + " dB" : "exact (no error)";

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
