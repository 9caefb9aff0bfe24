using System.Net.Http;

namespace McGrpc.Primary.Replication;

/// <summary>Fails every request with one reason: the channel of a target this daemon must not connect to.</summary>
internal sealed class RefusingHttpHandler : HttpMessageHandler
{
    private readonly string _reason;

    public RefusingHttpHandler(string reason)
    {
        _reason = reason;
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        => Task.FromException<HttpResponseMessage>(new HttpRequestException(_reason));
}
