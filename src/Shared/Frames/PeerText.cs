using System.Text;

namespace McGrpc.Shared.Frames;

/// <summary>
/// Text a peer chose (a VM id, a goodbye reason) on its way into logs and
/// status: bounded and without control characters, so a peer cannot flood a
/// log line or forge new ones.
/// </summary>
internal static class PeerText
{
    public static string Printable(string? text, int maxLength = 80)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var result = new StringBuilder(Math.Min(text.Length, maxLength) + 1);
        foreach (var c in text)
        {
            if (result.Length == maxLength)
            {
                result.Append('…');
                break;
            }

            result.Append(char.IsControl(c) || char.IsSurrogate(c) ? '?' : c);
        }

        return result.ToString();
    }
}
