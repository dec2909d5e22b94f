using MCUNetV2.Compiler.Diagnostics;

namespace MCUNetV2.Compiler.Toolchain;

/// <summary>
/// Compiles the generated C into a static library. <see cref="ArmToolchain"/> runs arm-none-eabi-gcc/ar directly;
/// the MSBuild tasks supply an implementation that runs them as MSBuild ToolTasks, so that compiler messages reach the
/// build log as MSBuild errors and warnings with file and line.
/// </summary>
public interface INativeLibraryBuilder
{
    /// <summary>Compiles one C file; returns warnings; throws <see cref="CompilerException"/> (MCU5002) on errors.</summary>
    IReadOnlyList<CompilerDiagnostic> CompileObject(string cFile, string objFile, IEnumerable<string> includeDirs);

    /// <summary>Creates <paramref name="libPath"/> from the objects, replacing it atomically; throws MCU5003 on failure.</summary>
    void Archive(IEnumerable<string> objects, string libPath);
}
