namespace McGrpc.Shared.Qmp;

/// <summary>What QEMU announced when the client connected.</summary>
/// <param name="Major">QEMU major version, e.g. 7.</param>
/// <param name="Minor">QEMU minor version, e.g. 2.</param>
/// <param name="Micro">QEMU micro version, e.g. 22.</param>
/// <param name="Package">The distribution's package string, e.g. <c>Debian 1:7.2+dfsg-7+deb12u18+b3</c>; empty for upstream builds.</param>
/// <param name="Capabilities">Optional QMP capabilities offered (7.2 offers <c>oob</c>); this client enables none.</param>
internal sealed record QmpGreeting(int Major, int Minor, int Micro, string Package, IReadOnlyList<string> Capabilities)
{
    /// <summary>The QEMU version as a <see cref="System.Version"/>.</summary>
    public Version Version => new(Major, Minor, Micro);

    public override string ToString() => Package.Length == 0 ? $"{Major}.{Minor}.{Micro}" : $"{Major}.{Minor}.{Micro} ({Package})";
}
