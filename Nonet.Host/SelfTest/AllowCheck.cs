using Nonet.Allow;

namespace Nonet.SelfTest;

/// <summary>
/// The self-test's line for --allow: whether this kernel can hand a
/// connection over (SECCOMP_IOCTL_NOTIF_ADDFD, Linux 5.9).
///
/// nonet without --allow works on older kernels, so on them the line is
/// a note (SKIP, not required) and the self-test still passes; only a
/// configuration that asks for --allow (the 'allow' setting, NONET_ALLOW)
/// makes it a required check that fails.  The release decides first, as
/// it does for a run (<see cref="AllowRun.Prepare"/>: below 5.9, --allow
/// exits 125); on a release that should have it, the probe's real request
/// decides.
/// </summary>
internal static class AllowCheck
{
    public const string Id = "allow";
    public const string Name = "--allow (connect hand-over)";

    /// <param name="release">The kernel's release as uname() gives it (what --allow checks).</param>
    /// <param name="probe">The probe's "allow_addfd" line, or null when the probe did not report it.</param>
    /// <param name="configuredAt">Where the configuration sets 'allow' (a file and line, an
    /// environment variable), or null when it does not.</param>
    /// <param name="notReached">Why the probe did not run, when it did not.</param>
    public static CheckResult Decide(string? release, (string Status, string Detail)? probe, string? configuredAt, string? notReached = null)
    {
        bool required = configuredAt is not null;
        string minimum = $"{AllowRun.MinimumKernel.Major}.{AllowRun.MinimumKernel.Minor}";
        if (!AllowRun.KernelSupports(release))
        {
            string detail = $"--allow unavailable: needs Linux {minimum} or later (SECCOMP_IOCTL_NOTIF_ADDFD); this kernel is {UserText.Quote(release ?? "unknown")}";
            return required
                ? new(Id, Name, CheckStatus.FAIL, $"{detail}, and {configuredAt} sets 'allow'",
                    $"run on Linux {minimum} or later, or take 'allow' out of {configuredAt}")
                : new(Id, Name, CheckStatus.SKIP, $"{detail}; nonet without --allow works", Required: false);
        }
        if (probe is not { } answer)
        {
            return notReached is not null
                ? new(Id, Name, CheckStatus.SKIP, "not reached: " + notReached, Required: false)
                : new(Id, Name, CheckStatus.FAIL, "the probe reported nothing", "report this as a bug, with this report", Required: required);
        }
        if (answer.Status == "PASS")
            return new(Id, Name, CheckStatus.PASS, $"Linux {release!.Trim()}: {answer.Detail}", Required: required);
        return new(Id, Name, CheckStatus.FAIL, $"--allow unavailable: {answer.Detail}",
            "--allow needs a seccomp listener of its own: run it outside any other seccomp supervisor (nonet --report or --allow, a container runtime's) and where seccomp(2) is not refused; nonet without --allow works",
            Required: required);
    }
}
