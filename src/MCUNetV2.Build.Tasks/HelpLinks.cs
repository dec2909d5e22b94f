namespace MCUNetV2.Build.Tasks;

/// <summary>
/// The help link of every MCUxxxx diagnostic: <c>&lt;base&gt;#mcuNNNN</c>, the anchor of that code's row in the README's
/// Diagnostics table. The targets pass the base (property MCUNetV2HelpLinkBase, by default the README.md shipped in the
/// package, as a file: URL); an empty base gives no link.
/// </summary>
internal static class HelpLinks
{
    public static string? For(string? helpLinkBase, string? code)
    {
        if (string.IsNullOrWhiteSpace(helpLinkBase) || string.IsNullOrEmpty(code) ||
            !code.StartsWith("MCU", StringComparison.Ordinal))
            return null;
        return helpLinkBase.Trim() + "#" + code.ToLowerInvariant();
    }
}
