using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Nonet.Dns;
using Nonet.Interop;
using Nonet.Runtime;

namespace Nonet.Allow;

/// <summary>
/// --allow for one run, everything it holds in one place: the rules
/// (<see cref="List"/>), the addresses DNS gave for allowed names
/// (<see cref="Addresses"/>, which the connect side asks), the DNS
/// forwarder that fills it, and the launcher's options for the namespace.
/// Prepared before the launch; null when there is no --allow, so a run
/// without it does no work for it.
/// </summary>
internal sealed class AllowRun : ICapability, IConnectPolicy
{
    /// <summary>SECCOMP_IOCTL_NOTIF_ADDFD, on which the connect hand-over rests.</summary>
    public static readonly Version MinimumKernel = new(5, 9);

    public AllowList List { get; }

    public AllowedAddresses Addresses { get; }

    public DnsForwarder Dns { get; }

    /// <summary>Whether "lo" inside gets 100::8 as well as 192.0.0.8.</summary>
    public bool HostHasIPv6 { get; }

    private AllowRun(AllowList list, IReadOnlyList<IPAddress> nameservers, HashSet<IPAddress> hostAddresses)
    {
        List = list;
        Addresses = new AllowedAddresses(list);
        Dns = new DnsForwarder(Addresses, nameservers, hostAddresses);
        HostHasIPv6 = hostAddresses.Any(IsGlobalIPv6);
    }

    /// <summary>
    /// The run's --allow, or null without one.  Checks the kernel (one line
    /// and status 125 below <see cref="MinimumKernel"/>), reads the host's
    /// addresses (which DNS answers may not point at) and /etc/hosts
    /// (whose entries for allowed names count as answers).
    /// </summary>
    public static AllowRun? Prepare(AllowList list, IReadOnlyList<IPAddress> nameservers)
    {
        if (list.IsEmpty)
            return null;
        string? release = HostNetwork.KernelRelease();
        if (!KernelSupports(release))
            throw new NonetException(ExitCodes.NonetFailed,
                $"--allow needs Linux {MinimumKernel.Major}.{MinimumKernel.Minor} or later (SECCOMP_IOCTL_NOTIF_ADDFD); this kernel is {UserText.Quote(release ?? "unknown")}");
        var hostAddresses = HostNetwork.Addresses();
        var run = new AllowRun(list, nameservers, hostAddresses);
        run.Addresses.RecordHostsFile(RawFile.ReadText(HostsFile.DefaultPath), hostAddresses);
        return run;
    }

    /// <summary>Whether a kernel release ("5.10.0-28-amd64") is at least
    /// <see cref="MinimumKernel"/>; false when it cannot be read.</summary>
    public static bool KernelSupports(string? release)
    {
        if (release is null)
            return false;
        var parts = release.Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major))
            return false;
        string minorText = new(parts[1].TakeWhile(char.IsAsciiDigit).ToArray());
        if (!int.TryParse(minorText, NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
            return false;
        return new Version(major, minor) >= MinimumKernel;
    }

    private static bool IsGlobalIPv6(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && !IPAddress.IsLoopback(address)
        && !address.IsIPv6LinkLocal && !address.IsIPv4MappedToIPv6;

    /// <summary>The launcher's options: the addresses "lo" gets inside so
    /// that getaddrinfo(AI_ADDRCONFIG) answers for allowed names (glibc
    /// counts no loopback address; launcher/netns.c).</summary>
    public IEnumerable<byte[]> LauncherArguments()
    {
        yield return "-a"u8.ToArray();
        yield return Encoding.ASCII.GetBytes(AddressClass.InsideIPv4.ToString());
        if (HostHasIPv6)
        {
            yield return "-a"u8.ToArray();
            yield return Encoding.ASCII.GetBytes(AddressClass.InsideIPv6.ToString());
        }
    }

    /// <summary>The address of STEP_LOOPBACK_UP's value N (from 1): the
    /// -a options in order.</summary>
    public string LoopbackAddressSubject(int value) =>
        value == 2 ? AddressClass.InsideIPv6.ToString() : AddressClass.InsideIPv4.ToString();

    /// <summary>The connect side's question (<see cref="ConnectBroker"/>):
    /// an address rule, or an address DNS gave for an allowed name, with a
    /// port its rule allows.</summary>
    public Verdict Decide(IPAddress address, int port) =>
        Addresses.IsAllowed(address, port) ? Verdict.Allowed : Verdict.Denied;

    /// <summary>Nothing of its own on the loop: its forwarder is the DNS
    /// room's (<see cref="DnsResponder"/>), which attaches and disposes it.</summary>
    public void Attach(Runtime.EventLoop loop)
    {
    }

    public void Dispose()
    {
    }
}
