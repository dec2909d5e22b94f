using System.Xml;
using System.Xml.Linq;

namespace MCUNetV2.Build.Tasks;

/// <summary>
/// Finds where a TinyModel item (and one of its metadata) is written in a project file, so that metadata errors
/// point at the line a person has to change. Best effort: items made by wildcards, properties or other items are
/// not found, and then the error points at the file alone.
/// </summary>
internal static class ItemLocator
{
    public readonly record struct Location(int Line, int Column);

    /// <param name="getMetadata">The item's metadata values: when several elements include the same file, the one
    /// whose literal metadata agree with the item's is chosen.</param>
    public static Location Find(string projectFile, string itemType, string itemSpec, string? metadataName,
        Func<string, string?>? getMetadata = null)
    {
        try
        {
            if (string.IsNullOrEmpty(projectFile) || !File.Exists(projectFile))
                return default;
            var doc = XDocument.Load(projectFile, LoadOptions.SetLineInfo);
            var candidates = doc.Descendants()
                .Where(e => e.Name.LocalName == itemType)
                .Where(e => e.Attribute("Include")?.Value is { } include && IncludeNames(include, itemSpec))
                .ToList();
            var element = candidates.FirstOrDefault(e => getMetadata is null || Agrees(e, getMetadata))
                          ?? candidates.FirstOrDefault();
            if (element is not null)
            {
                if (metadataName is not null)
                {
                    var attribute = element.Attributes().FirstOrDefault(a => a.Name.LocalName == metadataName);
                    if (attribute is not null)
                        return At(attribute);
                    var child = element.Elements().FirstOrDefault(e => e.Name.LocalName == metadataName);
                    if (child is not null)
                        return At(child);
                }
                return At(element);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or XmlException)
        {
            // The location is a courtesy; the error is reported without it.
        }
        return default;
    }

    private static readonly HashSet<string> NotMetadata = new(StringComparer.OrdinalIgnoreCase)
    {
        "Include", "Exclude", "Remove", "Update", "Condition", "KeepMetadata", "RemoveMetadata", "KeepDuplicates", "MatchOnMetadata", "MatchOnMetadataOptions",
    };

    /// <summary>Every literal metadata written on the element has the item's value (expressions are not judged).</summary>
    private static bool Agrees(XElement element, Func<string, string?> getMetadata)
    {
        var written = element.Attributes()
            .Where(a => !NotMetadata.Contains(a.Name.LocalName))
            .Select(a => (Name: a.Name.LocalName, Value: a.Value))
            .Concat(element.Elements().Where(e => !e.HasElements).Select(e => (Name: e.Name.LocalName, Value: e.Value)));
        foreach (var (name, value) in written)
        {
            if (value.Contains("$(") || value.Contains("%(") || value.Contains("@("))
                continue;
            var actual = getMetadata(name) ?? "";
            if (!string.Equals(actual.Trim(), value.Trim(), StringComparison.Ordinal))
                return false;
        }
        return true;
    }

    private static bool IncludeNames(string include, string itemSpec)
    {
        foreach (var part in include.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (SamePath(part, itemSpec))
                return true;
        }
        return false;
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(a.Replace('\\', '/'), b.Replace('\\', '/'), StringComparison.Ordinal);

    private static Location At(IXmlLineInfo info) =>
        info.HasLineInfo() ? new Location(info.LineNumber, info.LinePosition) : default;
}
