namespace MCUNetV2.Compiler.Planning;

/// <summary>Offsets in one static arena: greedy by size (largest first), first fit among buffers whose lifetimes overlap.</summary>
public static class ArenaAllocator
{
    public const int Alignment = 4;

    /// <summary>Where each buffer would go; the buffers' own offsets are left as they are (layouts are compared first,
    /// <see cref="Assign"/> then sets the chosen one's).</summary>
    public static IReadOnlyList<(PlannedBuffer Buffer, int Offset)> Place(IReadOnlyList<PlannedBuffer> buffers)
    {
        var placed = new List<(PlannedBuffer Buffer, int Offset)>();
        foreach (var b in buffers.OrderByDescending(b => b.Bytes).ThenBy(b => b.FirstStep))
        {
            var conflicts = placed.Where(p => p.Buffer.Overlaps(b)).OrderBy(p => p.Offset).ToList();
            int offset = 0;
            foreach (var c in conflicts)
            {
                if (offset + b.Bytes <= c.Offset) break;
                offset = Math.Max(offset, Align(c.Offset + c.Buffer.Bytes));
            }
            placed.Add((b, offset));
        }
        return placed;
    }

    /// <summary>The arena bytes of a placement.</summary>
    public static int Size(IReadOnlyList<(PlannedBuffer Buffer, int Offset)> placement) =>
        placement.Select(p => p.Offset + p.Buffer.Bytes).DefaultIfEmpty(0).Max();

    /// <summary>Sets the buffers' offsets to a placement's.</summary>
    public static void Assign(IReadOnlyList<(PlannedBuffer Buffer, int Offset)> placement)
    {
        foreach (var (b, offset) in placement) b.Offset = offset;
    }

    private static int Align(int x) => (x + Alignment - 1) / Alignment * Alignment;
}
