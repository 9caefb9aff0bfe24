using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Net.Client;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

namespace McGrpc.Tests.Control;

/// <summary>
/// What grpcurl does with no proto files: asks the server reflection service
/// for the services, then for the file that defines one, and reads its methods.
/// </summary>
internal static class ReflectionProbe
{
    /// <summary>Service names and the methods of <paramref name="service"/>, through grpc.reflection.v1alpha (what grpcurl asks first).</summary>
    public static async Task<(IReadOnlyList<string> Services, IReadOnlyList<string> Methods)> V1AlphaAsync(GrpcChannel channel, string service)
    {
        var client = new V1Alpha.ServerReflection.ServerReflectionClient(channel);
        using var call = client.ServerReflectionInfo(deadline: DateTime.UtcNow.AddSeconds(30));
        await call.RequestStream.WriteAsync(new V1Alpha.ServerReflectionRequest { ListServices = string.Empty });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        await call.RequestStream.WriteAsync(new V1Alpha.ServerReflectionRequest { FileContainingSymbol = service });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var response = call.ResponseStream.Current;
        Assert.True(response.MessageResponseCase == V1Alpha.ServerReflectionResponse.MessageResponseOneofCase.FileDescriptorResponse, $"reflection answered {response}");
        await call.RequestStream.CompleteAsync();
        return (services, Methods(response.FileDescriptorResponse.FileDescriptorProto, service));
    }

    /// <summary>The same through grpc.reflection.v1.</summary>
    public static async Task<(IReadOnlyList<string> Services, IReadOnlyList<string> Methods)> V1Async(GrpcChannel channel, string service)
    {
        var client = new V1.ServerReflection.ServerReflectionClient(channel);
        using var call = client.ServerReflectionInfo(deadline: DateTime.UtcNow.AddSeconds(30));
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { ListServices = string.Empty });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { FileContainingSymbol = service });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var response = call.ResponseStream.Current;
        Assert.True(response.MessageResponseCase == V1.ServerReflectionResponse.MessageResponseOneofCase.FileDescriptorResponse, $"reflection answered {response}");
        await call.RequestStream.CompleteAsync();
        return (services, Methods(response.FileDescriptorResponse.FileDescriptorProto, service));
    }

    private static List<string> Methods(IEnumerable<ByteString> files, string service)
    {
        foreach (var bytes in files)
        {
            var file = FileDescriptorProto.Parser.ParseFrom(bytes);
            foreach (var s in file.Service)
            {
                if ($"{file.Package}.{s.Name}" == service)
                {
                    return [.. s.Method.Select(m => $"{m.Name}({m.InputType.TrimStart('.')}) returns ({(m.ServerStreaming ? "stream " : string.Empty)}{m.OutputType.TrimStart('.')})")];
                }
            }
        }

        throw new Xunit.Sdk.XunitException($"No file from reflection defines {service}.");
    }
}
