using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Toolchain.Tests;

[TestClass]
public sealed class ElfSizesTests
{
    /// <summary>Runs arm-none-eabi-size (berkeley format) and sums text/data/bss over the rows it prints.</summary>
    private static (long Text, long Data, long Bss) GnuSize(string file)
    {
        var size = Fixture.Toolchain.FindTool("size");
        if (size == null) Assert.Inconclusive("arm-none-eabi-size is not installed");
        var r = ProcessRunner.Run(size, new[] { file }, timeout: TimeSpan.FromSeconds(30));
        Assert.AreEqual(0, r.ExitCode, r.OutputTail());
        long t = 0, d = 0, b = 0;
        foreach (var line in r.StandardOutput.Split('\n').Skip(1))
        {
            var m = Regex.Match(line, @"^\s*(\d+)\s+(\d+)\s+(\d+)\s");
            if (!m.Success) continue;
            t += long.Parse(m.Groups[1].Value);
            d += long.Parse(m.Groups[2].Value);
            b += long.Parse(m.Groups[3].Value);
        }
        return (t, d, b);
    }

    [TestMethod]
    public void Object_MatchesArmNoneEabiSize()
    {
        Fixture.RequireToolchain();
        var s = ElfSizes.Measure(Fixture.Object);
        var gnu = GnuSize(Fixture.Object);

        Assert.AreEqual(gnu.Text, s.Text);
        Assert.AreEqual(gnu.Data, s.Data);
        Assert.AreEqual(gnu.Bss, s.Bss);
        Assert.AreEqual(gnu.Text + gnu.Data, s.FlashBytes);
        Assert.AreEqual(gnu.Data + gnu.Bss, s.RamBytes);
        Assert.AreEqual(4, s.Data);               // int fake_calls
        Assert.AreEqual(FakeModel.ArenaBytes, s.Bss); // fake_arena
        Assert.IsTrue(s.Text > 4);                // code + fake_version
    }

    [TestMethod]
    public void Archive_SumsMembers_AndMatchesArmNoneEabiSize()
    {
        Fixture.RequireToolchain();
        var s = ElfSizes.Measure(Fixture.Library);
        var gnu = GnuSize(Fixture.Library);
        Assert.AreEqual((gnu.Text, gnu.Data, gnu.Bss), (s.Text, s.Data, s.Bss));
        Assert.AreEqual(ElfSizes.Measure(Fixture.Object), s);
        var members = ElfSizes.MeasureArchiveMembers(Fixture.Library);
        Assert.AreEqual("fake.o", members.Single().Name);
    }

    [TestMethod]
    public void Symbols_ArenaSizeFromObjectAndArchive()
    {
        Fixture.RequireToolchain();
        Assert.AreEqual(FakeModel.ArenaBytes, ElfSizes.SymbolSize(Fixture.Object, "fake_arena"));
        Assert.AreEqual(FakeModel.ArenaBytes, ElfSizes.SymbolSize(Fixture.Library, "fake_arena"));
        Assert.AreEqual(4L, ElfSizes.SymbolSize(Fixture.Library, "fake_version"));
        var f = ElfSizes.FindSymbol(Fixture.Library, "fake_invoke");
        Assert.IsNotNull(f);
        Assert.AreEqual(ElfSymbol.STT_FUNC, f.Type);
        Assert.AreEqual(ElfSymbol.STB_GLOBAL, f.Binding);
        Assert.IsNull(ElfSizes.SymbolSize(Fixture.Library, "no_such_symbol"));
    }

    [TestMethod]
    public void LongMemberNames_AreResolved()
    {
        Fixture.RequireToolchain();
        var dir = Fixture.NewDir("longnames");
        var objs = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            var src = Path.Combine(dir, $"a_rather_long_member_file_name_{i}.c");
            File.WriteAllText(src, $"char buffer_{i}[{(i + 1) * 10}];\n");
            var o = Path.ChangeExtension(src, ".o");
            Fixture.Toolchain.CompileObject(src, o, Array.Empty<string>(), "");
            objs.Add(o);
        }
        var lib = Path.Combine(dir, "liblong.a");
        Fixture.Toolchain.Archive(objs, lib);
        var members = ElfSizes.MeasureArchiveMembers(lib);
        CollectionAssert.AreEqual(new[] { "a_rather_long_member_file_name_0.o", "a_rather_long_member_file_name_1.o" },
            members.Select(m => m.Name).ToArray());
        Assert.AreEqual(30, ElfSizes.Measure(lib).Bss);
        Assert.AreEqual(20L, ElfSizes.SymbolSize(lib, "buffer_1"));
    }

    [TestMethod]
    public void NotElf_Throws()
    {
        Assert.ThrowsExactly<InvalidDataException>(() => ElfSizes.Measure(new byte[] { 1, 2, 3, 4 }));
        var elf64 = new byte[64];
        elf64[0] = 0x7F; elf64[1] = (byte)'E'; elf64[2] = (byte)'L'; elf64[3] = (byte)'F'; elf64[4] = 2; elf64[5] = 1;
        Assert.ThrowsExactly<InvalidDataException>(() => ElfSizes.Measure(elf64));
    }
}
