using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace McGrpc.ComposeTester.Docker;

/// <summary>
/// The few Docker Engine API calls the tester needs, over the engine's unix
/// socket (mounted into the tester's container). Paths carry no API version,
/// so any engine version answers with its own.
/// </summary>
internal sealed class DockerEngine : IDisposable
{
    private const string ProjectLabel = "com.docker.compose.project";
    private const string ServiceLabel = "com.docker.compose.service";

    private readonly HttpClient _http;
    private readonly string _socketPath;

    public DockerEngine(string socketPath)
    {
        _socketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://docker/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The compose project of the container this process runs in (found by its hostname, the container id).</summary>
    public async Task<string> OwnProjectAsync(CancellationToken cancellationToken)
    {
        var self = Environment.MachineName;
        using var doc = await GetJsonAsync($"containers/{Uri.EscapeDataString(self)}/json", cancellationToken).ConfigureAwait(false);
        if (doc.RootElement.GetProperty("Config").GetProperty("Labels") is { ValueKind: JsonValueKind.Object } labels
            && labels.TryGetProperty(ProjectLabel, out var project) && project.GetString() is { Length: > 0 } name)
        {
            return name;
        }

        throw new InvalidOperationException($"container {self} has no label {ProjectLabel}: is the tester running under docker-compose?");
    }

    /// <summary>Id and name of the running container of a compose service.</summary>
    public async Task<(string Id, string Name)> FindServiceContainerAsync(string project, string service, CancellationToken cancellationToken)
    {
        var filters = JsonSerializer.Serialize(new Dictionary<string, string[]>
        {
            ["label"] = [$"{ProjectLabel}={project}", $"{ServiceLabel}={service}"],
        });
        using var doc = await GetJsonAsync($"containers/json?filters={Uri.EscapeDataString(filters)}", cancellationToken).ConfigureAwait(false);
        var found = doc.RootElement.EnumerateArray()
            .Select(c => (Id: c.GetProperty("Id").GetString()!, Name: c.GetProperty("Names")[0].GetString()!.TrimStart('/')))
            .ToList();
        return found.Count switch
        {
            1 => found[0],
            0 => throw new InvalidOperationException($"no running container of service '{service}' in compose project '{project}'"),
            _ => throw new InvalidOperationException($"{found.Count} running containers of service '{service}' in project '{project}': {string.Join(", ", found.Select(f => f.Name))}"),
        };
    }

    /// <summary>Sends SIGKILL to a container, as "docker kill" does.</summary>
    public async Task KillAsync(string id, CancellationToken cancellationToken)
    {
        using var response = await _http.PostAsync($"containers/{Uri.EscapeDataString(id)}/kill?signal=KILL", content: null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.NoContent)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException($"docker kill {id} answered {(int)response.StatusCode}: {body.Trim()}");
        }
    }

    public void Dispose() => _http.Dispose();

    private async Task<JsonDocument> GetJsonAsync(string path, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.GetAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"cannot reach the Docker engine at {_socketPath} (mount it into the tester): {e.Message}", e);
        }

        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"docker GET /{path} answered {(int)response.StatusCode}: {body.Trim()}");
            }

            return JsonDocument.Parse(body);
        }
    }
}
