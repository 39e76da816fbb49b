using System;
using System.Globalization;

namespace Nonet.Allow;

/// <summary>Whether this run hands connections over (--allow), and whether
/// the kernel can: SECCOMP_IOCTL_NOTIF_ADDFD came with Linux 5.9.</summary>
internal static class AllowPlan
{
    public static readonly Version MinimumKernel = new(5, 9);

    /// <summary>The policy for NONET_ALLOW's rules, or null when there are
    /// none (then nothing of --allow runs).  A kernel too old for it stops
    /// nonet with one line (125).</summary>
    public static IConnectPolicy? From(string? rules, Func<string?> kernelRelease)
    {
        if (string.IsNullOrWhiteSpace(rules))
            return null;
        var policy = AddressRulePolicy.Parse(rules);
        if (policy.Rules.Count == 0)
            return null;
        string? release = kernelRelease();
        if (!KernelSupports(release))
            throw new NonetException(ExitCodes.NonetFailed,
                $"--allow needs Linux {MinimumKernel} or later (SECCOMP_IOCTL_NOTIF_ADDFD); this kernel is {release?.Trim() ?? "unknown"}");
        return policy;
    }

    /// <summary>Whether a kernel release ("6.18.4-foo") is at least
    /// <see cref="MinimumKernel"/>; an unreadable one is not.</summary>
    public static bool KernelSupports(string? release)
    {
        if (release is null)
            return false;
        var parts = release.Trim().Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major))
            return false;
        int end = 0;
        while (end < parts[1].Length && char.IsAsciiDigit(parts[1][end]))
            end++;
        if (end == 0 || !int.TryParse(parts[1][..end], NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
            return false;
        return new Version(major, minor) >= MinimumKernel;
    }
}
