using System.Globalization;

namespace McGrpc.Tests.Control;

/// <summary>Scrapes a Prometheus text endpoint over HTTP/1.1 and reads samples by "name{labels}".</summary>
internal sealed class PrometheusScrape
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(20) };

    private PrometheusScrape(string text, string contentType, Dictionary<string, double> samples)
    {
        Text = text;
        ContentType = contentType;
        Samples = samples;
    }

    public string Text { get; }

    public string ContentType { get; }

    public IReadOnlyDictionary<string, double> Samples { get; }

    public static async Task<PrometheusScrape> GetAsync(int port)
    {
        using var response = await Http.GetAsync($"http://127.0.0.1:{port}/metrics");
        response.EnsureSuccessStatusCode();
        var text = await response.Content.ReadAsStringAsync();
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                samples[line[..space]] = value;
            }
        }

        return new PrometheusScrape(text, response.Content.Headers.ContentType?.MediaType ?? string.Empty, samples);
    }

    /// <summary>The sample's value; fails with the metric names present when it is missing.</summary>
    public double this[string key] => Samples.TryGetValue(key, out var value)
        ? value
        : throw new Xunit.Sdk.XunitException($"No sample '{key}' in the scrape; mcgrpc samples: {string.Join(", ", Samples.Keys.Where(k => k.StartsWith("mcgrpc_", StringComparison.Ordinal)))}");
}
