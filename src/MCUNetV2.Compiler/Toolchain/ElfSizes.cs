using System.Buffers.Binary;
using System.Text;

namespace MCUNetV2.Compiler.Toolchain;

/// <summary>One section header of an ELF32 file.</summary>
public sealed record ElfSection(string Name, uint Type, uint Flags, uint Address, uint Offset, uint Size, uint Link,
    uint EntrySize)
{
    public const uint SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_NOBITS = 8;
    public const uint SHF_WRITE = 0x1, SHF_ALLOC = 0x2, SHF_EXECINSTR = 0x4;

    public bool IsAlloc => (Flags & SHF_ALLOC) != 0;
    public bool IsWritable => (Flags & SHF_WRITE) != 0;
    public bool IsNoBits => Type == SHT_NOBITS;
}

/// <summary>One symbol-table entry of an ELF32 file.</summary>
public sealed record ElfSymbol(string Name, uint Value, uint Size, byte Type, byte Binding, ushort SectionIndex)
{
    public const byte STT_OBJECT = 1, STT_FUNC = 2;
    public const byte STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;
    public const ushort SHN_UNDEF = 0, SHN_COMMON = 0xFFF2;

    public bool IsDefined => SectionIndex != SHN_UNDEF;
}

/// <summary>
/// Memory footprint of an object, executable or archive. <see cref="Text"/>: allocated read-only sections
/// (code, constants); <see cref="Data"/>: allocated writable sections with contents (initialised data, whose
/// image also occupies flash); <see cref="Bss"/>: allocated sections without contents (zeroed data, arena, stack).
/// Flash = Text + Data; RAM = Data + Bss. For an executable these agree with <c>arm-none-eabi-size</c> (berkeley).
/// </summary>
public sealed record ElfSizeInfo(long Text, long Data, long Bss)
{
    public long FlashBytes => Text + Data;
    public long RamBytes => Data + Bss;

    public static ElfSizeInfo operator +(ElfSizeInfo a, ElfSizeInfo b) => new(a.Text + b.Text, a.Data + b.Data, a.Bss + b.Bss);
    public static readonly ElfSizeInfo Zero = new(0, 0, 0);
}

/// <summary>A member of a static library with its sizes (non-ELF members have none).</summary>
public sealed record ArchiveMemberSizes(string Name, ElfSizeInfo Sizes);

/// <summary>
/// Reads ELF32 little-endian files (ARM objects and executables) and <c>!&lt;arch&gt;</c> static libraries to report
/// flash/RAM footprints and symbol sizes. Throws <see cref="InvalidDataException"/> for anything else.
/// </summary>
public static class ElfSizes
{
    private static readonly byte[] ArchiveMagic = "!<arch>\n"u8.ToArray();

    /// <summary>Sizes of an ELF file, or the sum over the ELF members of a static library.</summary>
    public static ElfSizeInfo Measure(string path) => Measure(File.ReadAllBytes(path), path);

    /// <summary>Sizes of ELF or archive bytes.</summary>
    public static ElfSizeInfo Measure(byte[] bytes, string? nameForErrors = null)
    {
        if (IsArchive(bytes))
            return ReadArchive(bytes, nameForErrors).Where(m => IsElf(m.Data))
                .Select(m => MeasureElf(m.Data, m.Name)).Aggregate(ElfSizeInfo.Zero, (a, b) => a + b);
        return MeasureElf(bytes, nameForErrors);
    }

    /// <summary>Per-member sizes of a static library (members that are not ELF objects report zero).</summary>
    public static IReadOnlyList<ArchiveMemberSizes> MeasureArchiveMembers(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (!IsArchive(bytes)) throw new InvalidDataException($"'{path}' is not a static library (!<arch>)");
        return ReadArchive(bytes, path)
            .Select(m => new ArchiveMemberSizes(m.Name, IsElf(m.Data) ? MeasureElf(m.Data, m.Name) : ElfSizeInfo.Zero))
            .ToList();
    }

    /// <summary>Section headers of an ELF32 little-endian image.</summary>
    public static IReadOnlyList<ElfSection> ReadSections(byte[] elf, string? nameForErrors = null)
    {
        var name = nameForErrors ?? "ELF image";
        if (!IsElf(elf)) throw new InvalidDataException($"{name} is not an ELF file");
        if (elf[4] != 1) throw new InvalidDataException($"{name} is not a 32-bit ELF file");
        if (elf[5] != 1) throw new InvalidDataException($"{name} is not a little-endian ELF file");
        if (elf.Length < 52) throw new InvalidDataException($"{name}: truncated ELF header");

        uint shoff = U32(elf, 0x20);
        ushort shentsize = U16(elf, 0x2E);
        int shnum = U16(elf, 0x30);
        int shstrndx = U16(elf, 0x32);
        if (shoff == 0) return Array.Empty<ElfSection>();
        if (shentsize < 40) throw new InvalidDataException($"{name}: bad section header size {shentsize}");
        // Extended numbering: the real count / string-table index live in section 0.
        if (shnum == 0) shnum = (int)U32(elf, Check(elf, shoff, 40, name) + 0x14);
        if (shstrndx == 0xFFFF) shstrndx = (int)U32(elf, Check(elf, shoff, 40, name) + 0x18);

        var raw = new (uint name, uint type, uint flags, uint addr, uint off, uint size, uint link, uint entsize)[shnum];
        for (int i = 0; i < shnum; i++)
        {
            int h = Check(elf, shoff + (long)i * shentsize, 40, name);
            raw[i] = (U32(elf, h), U32(elf, h + 4), U32(elf, h + 8), U32(elf, h + 12), U32(elf, h + 16),
                U32(elf, h + 20), U32(elf, h + 24), U32(elf, h + 36));
        }

        var sections = new ElfSection[shnum];
        var strtab = shstrndx > 0 && shstrndx < shnum ? raw[shstrndx] : default;
        for (int i = 0; i < shnum; i++)
        {
            var r = raw[i];
            var sname = strtab.size > 0 ? ReadString(elf, strtab.off, strtab.size, r.name) : "";
            sections[i] = new ElfSection(sname, r.type, r.flags, r.addr, r.off, r.size, r.link, r.entsize);
        }
        return sections;
    }

    /// <summary>Symbols of an ELF32 little-endian image (from .symtab; empty when stripped).</summary>
    public static IReadOnlyList<ElfSymbol> ReadSymbols(byte[] elf, string? nameForErrors = null)
    {
        var name = nameForErrors ?? "ELF image";
        var sections = ReadSections(elf, name);
        var result = new List<ElfSymbol>();
        foreach (var symtab in sections.Where(s => s.Type == ElfSection.SHT_SYMTAB))
        {
            if (symtab.Link >= sections.Count) throw new InvalidDataException($"{name}: bad symbol string table link");
            var strtab = sections[(int)symtab.Link];
            uint entsize = symtab.EntrySize == 0 ? 16 : symtab.EntrySize;
            Check(elf, symtab.Offset, symtab.Size, name);
            for (uint off = 0; off + 16 <= symtab.Size; off += entsize)
            {
                int p = (int)(symtab.Offset + off);
                var symName = ReadString(elf, strtab.Offset, strtab.Size, U32(elf, p));
                result.Add(new ElfSymbol(symName, U32(elf, p + 4), U32(elf, p + 8), (byte)(elf[p + 12] & 0xF),
                    (byte)(elf[p + 12] >> 4), U16(elf, p + 14)));
            }
        }
        return result;
    }

    /// <summary>
    /// The first defined symbol named <paramref name="symbolName"/> in an ELF file or in any member of a static
    /// library (global/weak symbols preferred over local ones), or null.
    /// </summary>
    public static ElfSymbol? FindSymbol(string path, string symbolName)
    {
        var bytes = File.ReadAllBytes(path);
        var images = IsArchive(bytes)
            ? ReadArchive(bytes, path).Where(m => IsElf(m.Data)).Select(m => (m.Data, m.Name))
            : new[] { (bytes, path) };
        ElfSymbol? local = null;
        foreach (var (data, name) in images)
        {
            foreach (var s in ReadSymbols(data, name))
            {
                if (s.Name != symbolName || !s.IsDefined) continue;
                if (s.Binding != ElfSymbol.STB_LOCAL) return s;
                local ??= s;
            }
        }
        return local;
    }

    /// <summary>Size in bytes of the named symbol (e.g. <c>vww_arena</c>), or null when it is not defined.</summary>
    public static long? SymbolSize(string path, string symbolName) => FindSymbol(path, symbolName)?.Size;

    private static ElfSizeInfo MeasureElf(byte[] elf, string? name)
    {
        long text = 0, data = 0, bss = 0;
        foreach (var s in ReadSections(elf, name))
        {
            if (!s.IsAlloc || s.Size == 0) continue;
            if (s.IsNoBits) bss += s.Size;
            else if (s.IsWritable) data += s.Size;
            else text += s.Size;
        }
        return new ElfSizeInfo(text, data, bss);
    }

    public static bool IsElf(byte[] b) => b.Length >= 16 && b[0] == 0x7F && b[1] == (byte)'E' && b[2] == (byte)'L' && b[3] == (byte)'F';

    public static bool IsArchive(byte[] b) => b.AsSpan().StartsWith(ArchiveMagic);

    /// <summary>Members of a GNU/BSD <c>!&lt;arch&gt;</c> archive, skipping the symbol index and long-name table.</summary>
    private static List<(string Name, byte[] Data)> ReadArchive(byte[] a, string? nameForErrors)
    {
        var name = nameForErrors ?? "archive";
        var members = new List<(string, byte[])>();
        string? longNames = null;
        long pos = ArchiveMagic.Length;
        while (pos < a.Length)
        {
            if (a[pos] == (byte)'\n') { pos++; continue; } // padding
            if (pos + 60 > a.Length) throw new InvalidDataException($"{name}: truncated archive member header");
            int h = (int)pos;
            if (a[h + 58] != (byte)'`' || a[h + 59] != (byte)'\n')
                throw new InvalidDataException($"{name}: bad archive member header at offset {h}");
            var rawName = Encoding.ASCII.GetString(a, h, 16).TrimEnd(' ');
            var sizeText = Encoding.ASCII.GetString(a, h + 48, 10).Trim();
            if (!long.TryParse(sizeText, out long size) || size < 0 || h + 60 + size > a.Length)
                throw new InvalidDataException($"{name}: bad archive member size '{sizeText}' at offset {h}");
            int dataStart = h + 60;
            int dataLength = (int)size;
            pos = dataStart + size + (size & 1);

            string memberName;
            if (rawName == "/" || rawName == "/SYM64/" || rawName.StartsWith("__.SYMDEF")) continue; // symbol index
            if (rawName == "//") { longNames = Encoding.ASCII.GetString(a, dataStart, dataLength); continue; }
            if (rawName.StartsWith("#1/") && int.TryParse(rawName.AsSpan(3), out int bsdLen))
            {
                // BSD: the name precedes the data.
                memberName = Encoding.ASCII.GetString(a, dataStart, Math.Min(bsdLen, dataLength)).TrimEnd('\0');
                dataStart += bsdLen;
                dataLength -= bsdLen;
                if (memberName.StartsWith("__.SYMDEF")) continue;
            }
            else if (rawName.Length > 1 && rawName[0] == '/' && int.TryParse(rawName.AsSpan(1), out int offset))
            {
                if (longNames == null || offset >= longNames.Length)
                    throw new InvalidDataException($"{name}: long member name without a name table");
                int end = longNames.IndexOf('\n', offset);
                memberName = (end < 0 ? longNames[offset..] : longNames[offset..end]).TrimEnd('/');
            }
            else
            {
                memberName = rawName.TrimEnd('/');
            }
            members.Add((memberName, a.AsSpan(dataStart, Math.Max(0, dataLength)).ToArray()));
        }
        return members;
    }

    private static int Check(byte[] b, long offset, long length, string name)
    {
        if (offset < 0 || length < 0 || offset + length > b.Length)
            throw new InvalidDataException($"{name}: ELF structure at offset {offset} runs past the end of the file");
        return (int)offset;
    }

    private static string ReadString(byte[] b, uint tableOffset, uint tableSize, uint index)
    {
        if (index >= tableSize) return "";
        long start = (long)tableOffset + index;
        long limit = Math.Min((long)tableOffset + tableSize, b.Length);
        if (start >= limit) return "";
        int end = Array.IndexOf(b, (byte)0, (int)start, (int)(limit - start));
        if (end < 0) end = (int)limit;
        return Encoding.UTF8.GetString(b, (int)start, end - (int)start);
    }

    private static ushort U16(byte[] b, long o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan((int)o, 2));
    private static uint U32(byte[] b, long o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)o, 4));
}
