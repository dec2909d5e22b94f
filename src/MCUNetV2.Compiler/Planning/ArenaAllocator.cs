namespace MCUNetV2.Compiler.Planning;

/// <summary>Offsets in one static arena: greedy by size (largest first), first fit among buffers whose lifetimes overlap.</summary>
public static class ArenaAllocator
{
    public const int Alignment = 4;

    public static void Assign(IReadOnlyList<PlannedBuffer> buffers)
    {
        var placed = new List<PlannedBuffer>();
        foreach (var b in buffers.OrderByDescending(b => b.Bytes).ThenBy(b => b.FirstStep))
        {
            var conflicts = placed.Where(p => p.Overlaps(b)).OrderBy(p => p.Offset).ToList();
            int offset = 0;
            foreach (var c in conflicts)
            {
                if (offset + b.Bytes <= c.Offset) break;
                offset = Math.Max(offset, Align(c.Offset + c.Bytes));
            }
            b.Offset = offset;
            placed.Add(b);
        }
    }

    private static int Align(int x) => (x + Alignment - 1) / Alignment * Alignment;
}
