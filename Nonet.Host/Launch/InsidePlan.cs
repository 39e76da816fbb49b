using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Text;
using Nonet.Dns;

namespace Nonet.Launch;

/// <summary>
/// What the launcher's child makes of the namespace besides "lo": the
/// nameserver addresses nonet answers on, the host resolver sockets it
/// hides, and the trees it makes read-only.  Pure data: <see cref="For"/>
/// decides from facts passed in, and unit tests check it.
/// </summary>
internal sealed record InsidePlan(
    IReadOnlyList<IPAddress> Nameservers,
    IReadOnlyList<string> HiddenSockets,
    IReadOnlyList<string> ReadOnlyTrees)
{
    /// <summary>
    /// Host daemons that resolve names for whoever connects, outside the
    /// namespace: nscd (glibc's name service cache), systemd-resolved's
    /// varlink API (nss-resolve) and avahi (nss-mdns).  Hidden where they
    /// exist; glibc then falls back to DNS, which nonet answers.
    /// </summary>
    public static readonly IReadOnlyList<string> ResolverSockets =
    [
        "/var/run/nscd/socket",
        "/run/systemd/resolve/io.systemd.Resolve",
        "/run/avahi-daemon/socket",
    ];

    /// <summary>
    /// Made read-only when the caller is root: uid 0 inside passes the owner
    /// checks of the kernel's settings even without capabilities, and
    /// kernel.core_pattern alone would let it run a program on the host
    /// with every privilege.  For any other caller these are root's files,
    /// already out of reach.  The /proc trees of hardware and drivers
    /// (interrupt affinity, PCI configuration space...) are the kernel's
    /// settings too, and made read-only as container engines do (issue 19);
    /// a tree the kernel lacks is left out.  With /proc/sys, the launcher
    /// also forbids nested user namespaces (launcher/netns.c).
    /// </summary>
    public static readonly IReadOnlyList<string> KernelSettings =
    [
        "/proc/sys", "/proc/sysrq-trigger", "/sys",
        "/proc/irq", "/proc/bus", "/proc/acpi", "/proc/scsi", "/proc/driver", "/proc/fs",
    ];

    /// <param name="resolvConf">the text of /etc/resolv.conf, or null</param>
    /// <param name="isSocket">whether a path is a Unix socket (following symlinks)</param>
    /// <param name="callerIsRoot">whether nonet runs with euid 0</param>
    public static InsidePlan For(string? resolvConf, Func<string, bool> isSocket, bool callerIsRoot) => new(
        ResolvConf.Nameservers(resolvConf),
        ResolverSockets.Where(isSocket).ToList(),
        callerIsRoot ? KernelSettings : []);

    /// <summary>A mount namespace costs time: made only when needed.</summary>
    public bool NeedsMountNamespace => HiddenSockets.Count > 0 || ReadOnlyTrees.Count > 0;

    /// <summary>The launcher's options for this plan, before its STATUS_FD.</summary>
    public IEnumerable<byte[]> LauncherArguments()
    {
        foreach (var address in Nameservers)
        {
            yield return "-n"u8.ToArray();
            yield return Encoding.ASCII.GetBytes(address.ToString());
        }
        foreach (var path in HiddenSockets)
        {
            yield return "-H"u8.ToArray();
            yield return Encoding.UTF8.GetBytes(path);
        }
        foreach (var path in ReadOnlyTrees)
        {
            yield return "-o"u8.ToArray();
            yield return Encoding.UTF8.GetBytes(path);
        }
    }

    /// <summary>The path of STEP_MOUNTS's value N (from 1): the -H paths,
    /// then the -o paths; 0 is the mount namespace itself.</summary>
    public string? MountSubject(int value) =>
        value >= 1 && value <= HiddenSockets.Count ? HiddenSockets[value - 1]
        : value > HiddenSockets.Count && value <= HiddenSockets.Count + ReadOnlyTrees.Count ? ReadOnlyTrees[value - HiddenSockets.Count - 1]
        : null;

    /// <summary>The nameserver of STEP_DNS's value (which -n, from 0).</summary>
    public string NameserverSubject(int value) =>
        value >= 0 && value < Nameservers.Count ? Nameservers[value].ToString() : value.ToString(CultureInfo.InvariantCulture);
}
