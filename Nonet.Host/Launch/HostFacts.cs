using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Nonet.Launch;

/// <summary>What nonet needs to know about this host to explain a failure
/// or fill a self-test report.  Read only when needed.</summary>
internal sealed record HostFacts(
    IReadOnlyDictionary<string, string> Sysctls,
    uint Uid,
    uint Gid,
    string? UidMap,
    string? GidMap,
    string? ProcessLimit = null,
    string? OpenFileLimit = null,
    bool ProcSysReadOnly = false)
{
    /// <summary>The sysctls that decide whether an unprivileged user may create
    /// user and network namespaces.  Each exists only on some kernels.</summary>
    public static readonly IReadOnlyList<string> RelevantSysctls =
    [
        "kernel.unprivileged_userns_clone",
        "kernel.apparmor_restrict_unprivileged_userns",
        "user.max_user_namespaces",
        "user.max_net_namespaces",
    ];

    public static HostFacts Read() => new(
        RelevantSysctls
            .Select(name => (name, value: TryRead("/proc/sys/" + name.Replace('.', '/'))))
            .Where(s => s.value is not null)
            .ToDictionary(s => s.name, s => s.value!.Trim()),
        Tmds.Linux.LibC.geteuid(),
        Tmds.Linux.LibC.getegid(),
        TryRead("/proc/self/uid_map"),
        TryRead("/proc/self/gid_map"),
        Interop.Libc.SoftLimit(Interop.Libc.RLIMIT_NPROC),
        Interop.Libc.SoftLimit(Interop.Libc.RLIMIT_NOFILE),
        ProcSysMountedReadOnly(TryRead("/proc/self/mountinfo")));

    /// <summary>Whether the last mount on /proc/sys is read-only, as nonet
    /// mounts it for a root caller.</summary>
    public static bool ProcSysMountedReadOnly(string? mountinfo)
    {
        bool readOnly = false;
        foreach (var line in (mountinfo ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ');
            if (f.Length > 5 && f[4] == "/proc/sys")
                readOnly = f[5].Split(',').Contains("ro");
        }
        return readOnly;
    }

    public string? Sysctl(string name) => Sysctls.TryGetValue(name, out var v) ? v : null;

    /// <summary>Whether <paramref name="id"/> is mapped by an id map as
    /// /proc/self/uid_map shows it ("inside outside count" lines).  A missing
    /// map (no user namespaces at all) maps everything.</summary>
    public static bool IsMapped(string? map, uint id)
    {
        if (map is null)
            return true;
        foreach (var line in map.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 3 && ulong.TryParse(f[0], out var inside) && ulong.TryParse(f[2], out var count)
                && id >= inside && id < inside + count)
                return true;
        }
        return false;
    }

    /// <summary>True when this process is not in the initial user namespace.</summary>
    public bool InNestedUserNamespace =>
        UidMap is not null && UidMap.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries) is not ["0", "0", "4294967295"];

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
