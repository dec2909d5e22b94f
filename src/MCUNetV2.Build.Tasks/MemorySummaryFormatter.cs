using System.Globalization;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Build.Tasks;

/// <summary>The few aligned lines that the build log shows for one model.</summary>
internal static class MemorySummaryFormatter
{
    /// <param name="patchGrid">The PatchGrid asked for ("2x2", "auto"); the schedule line says what was chosen.</param>
    public static IReadOnlyList<string> Format(string prefix, string patchGrid, MemorySummary memory)
    {
        var lines = new List<string>
        {
            $"{prefix}: memory (patch grid {patchGrid})",
            Row("per-layer peak SRAM", memory.PerLayerPeakBytes),
            Row("patch-based peak SRAM", memory.PatchBasedPeakBytes) + Saving(memory.PerLayerPeakBytes, memory.PatchBasedPeakBytes),
            Row("arena", memory.ArenaBytes),
            Row("flash", memory.FlashBytes),
            Row("RAM", memory.RamBytes),
        };
        var schedule = (memory.Schedule ?? "").Replace("\r\n", "\n").Trim();
        if (schedule.Length > 0)
        {
            var scheduleLines = schedule.Split('\n');
            lines.Add($"  {"schedule",-Label} : {scheduleLines[0].Trim()}");
            foreach (var more in scheduleLines.Skip(1))
                lines.Add($"  {"",-Label}   {more.Trim()}");
        }
        if (!string.IsNullOrEmpty(memory.Quantization))
            lines.Add($"  {"quantization",-Label} : {memory.Quantization}");
        if (!string.IsNullOrEmpty(memory.Verification))
            lines.Add($"  {"verified",-Label} : {memory.Verification}");
        return lines;
    }

    private const int Label = 21; // "patch-based peak SRAM"

    private static string Row(string label, long bytes) =>
        $"  {label,-Label} : {bytes.ToString("N0", CultureInfo.InvariantCulture),13} B  ({Human(bytes),10})";

    private static string Saving(long before, long after)
    {
        if (before <= 0 || after <= 0 || after == before)
            return "";
        double ratio = (double)before / after;
        return ratio >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"  {ratio:0.00}x smaller than per-layer")
            : string.Create(CultureInfo.InvariantCulture, $"  {1 / ratio:0.00}x larger than per-layer");
    }

    public static string Human(long bytes)
    {
        if (bytes < 1024)
            return string.Create(CultureInfo.InvariantCulture, $"{bytes} B");
        if (bytes < 1024 * 1024)
            return string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB");
        return string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024.0):0.00} MiB");
    }
}
