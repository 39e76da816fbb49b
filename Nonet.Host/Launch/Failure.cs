using System;
using System.Collections.Generic;
using System.Linq;
using static Tmds.Linux.LibC;

using Nonet.Interop;

namespace Nonet.Launch;

/// <summary>Every step of a launch, the host's and the launcher's, in order.</summary>
internal enum Step
{
    SpawnLauncher,
    LauncherStart,
    Clone,
    WriteSetgroups,
    WriteUidMap,
    WriteGidMap,
    WaitMaps,
    UnshareNet,
    LoopbackUp,
    DropCaps,
    Listen,
    ReceiveListeners,
    Helper,
    Dns,
    Mounts,
    Report,
    Filter,
    Exec,
    LauncherEnded,
}

/// <summary>The step that failed, its errno, and what it was working on.</summary>
internal sealed record LaunchFailure(Step Step, int Errno, string Subject = "");

/// <summary>What the user is told, the exit status, and a fix if there is one.</summary>
internal sealed record Explanation(int ExitCode, string Message, string? Fix);

/// <summary>
/// Turns a failed step into one line for the user.  Pure: the host facts
/// come in as data, so every branch is unit-tested.  The advice follows
/// bubblewrap's lead of naming the sysctl to look at.
/// </summary>
internal static class FailureExplainer
{
    public static Explanation Explain(LaunchFailure failure, HostFacts facts)
    {
        string error = failure.Errno == 0 ? "" : Interop.Libc.Describe(failure.Errno);
        if (failure.Step != Step.Exec && ResourceLimit(failure.Errno, facts) is { } limit)
            return Nonet($"{limit.What}: {FailureExplainer.StepNames[failure.Step]}: {error}", limit.Fix);
        switch (failure.Step)
        {
            case Step.SpawnLauncher:
                return failure.Errno == Errno.E2BIG
                    ? Nonet($"the arguments are too long: cannot start the launcher {failure.Subject}: {error}", ArgumentsAdvice)
                    : Nonet($"cannot start the launcher {failure.Subject}: {error}",
                        failure.Errno == Errno.ENOENT ? "reinstall nonet, or point the 'launcher' setting at nonet-launcher" : "check that the launcher is an executable file for this machine");
            case Step.LauncherStart:
                return Nonet($"the launcher could not prepare: {error}", null);
            case Step.Clone:
                string? advice = UserNamespaceAdvice(failure.Errno, facts);
                return advice == RootInsideNonet
                    ? Nonet(RootInsideNonet, null)
                    : Nonet($"cannot create a user namespace: clone: {error}", advice);
            case Step.WriteSetgroups:
            case Step.WriteUidMap:
            case Step.WriteGidMap:
                return Nonet($"cannot write {failure.Subject}: {error}", MapAdvice(facts));
            case Step.WaitMaps:
                return Nonet($"the launcher was not released after the id maps were written: {error}", null);
            case Step.UnshareNet:
                return Nonet($"cannot create a network namespace: unshare: {error}", failure.Errno == Errno.ENOSPC
                    ? Limit(facts, "user.max_net_namespaces")
                    : failure.Errno is Errno.EPERM or Errno.EACCES ? ContainerAdvice : null);
            case Step.LoopbackUp when failure.Subject.Length > 0:
                return Nonet($"cannot add {failure.Subject} to the loopback interface for --allow: {error}", null);
            case Step.LoopbackUp:
                return Nonet($"cannot bring the loopback interface up: {error}", failure.Errno is Errno.EPERM or Errno.EACCES ? ContainerAdvice : null);
            case Step.DropCaps:
                return Nonet($"cannot drop capabilities before running the command: {error}", null);
            case Step.Listen:
                return Nonet(failure.Subject is "" or "0"
                    ? $"cannot hand the forwarded ports' listeners to nonet: {error}"
                    : $"cannot listen on forwarded port {failure.Subject} inside the namespace: {error}", null);
            case Step.ReceiveListeners:
                return Nonet($"cannot receive the forwarded ports' listeners from the launcher: {error}", null);
            case Step.Helper:
                return Nonet($"cannot start the helper for published ports: {error}", null);
            case Step.Dns:
                return Nonet($"cannot answer name lookups inside for nameserver {failure.Subject}: {error}",
                    failure.Errno is Errno.EPERM or Errno.EACCES ? ContainerAdvice : null);
            case Step.Mounts:
                return Nonet(failure.Subject is ""
                    ? $"cannot create a mount namespace: unshare: {error}"
                    : $"cannot {(InsidePlan.KernelSettings.Contains(failure.Subject) ? "make read-only" : "hide")} {failure.Subject} inside: {error}",
                    failure.Errno is Errno.EPERM or Errno.EACCES ? ContainerAdvice : null);
            case Step.Report:
                return Nonet($"cannot watch the command's network calls for --report: {failure.Subject}{error}",
                    failure.Errno is Errno.EPERM or Errno.EACCES ? "the kernel refused seccomp or pidfd_getfd (Linux 5.6 or later, ptrace allowed by Yama and the LSMs, is needed); run without --report"
                    : failure.Errno == Errno.EINVAL ? "seccomp user notification needs Linux 5.6 or later; run without --report" : null);
            case Step.Filter:
                // The filter that refuses vsock and TIOCSTI is part of every
                // run: without it the command does not start.
                return Nonet($"cannot install nonet's seccomp filter: {error}",
                    "seccomp filters (CONFIG_SECCOMP_FILTER) are needed; check that no security module or container runtime refuses seccomp(2)");
            case Step.Exec:
                // The shell's convention: 127 when there is no such file, 126
                // when it exists but cannot be run (a symbolic-link loop too).
                return new Explanation(
                    failure.Errno is Errno.ENOENT or Errno.ENOTDIR or Errno.ENAMETOOLONG ? ExitCodes.NotFound : ExitCodes.CannotExecute,
                    $"{failure.Subject}: {error}", failure.Errno == Errno.E2BIG ? ArgumentsAdvice : null);
            default:
                return Nonet($"the launcher ended before the command started{failure.Subject}", "run 'nonet --self-test' for details");
        }
    }

    private const string ArgumentsAdvice = "shorten the command's arguments or the environment (together they must fit in 'getconf ARG_MAX' bytes)";

    /// <summary>
    /// execve(2) says ENOENT about a script whose "#!" interpreter is
    /// missing, though the script is there (nonet checked before the
    /// launch): name the interpreter.  <paramref name="head"/> is the start
    /// of the file; null when it is no such script.
    /// </summary>
    public static Explanation? MissingInterpreter(LaunchFailure failure, ReadOnlySpan<byte> head)
    {
        if (failure.Step != Step.Exec || failure.Errno != Errno.ENOENT || !head.StartsWith("#!"u8))
            return null;
        var line = head[2..];
        int end = line.IndexOfAny((byte)'\n', (byte)'\r');
        line = (end >= 0 ? line[..end] : line).TrimStart(" \t"u8);
        int space = line.IndexOfAny((byte)' ', (byte)'\t');
        var interpreter = space >= 0 ? line[..space] : line;
        if (interpreter.IsEmpty)
            return null;
        return new Explanation(ExitCodes.NotFound,
            $"{failure.Subject}: bad interpreter {UserText.Quote(interpreter)}: {Interop.Libc.Describe(Errno.ENOENT)}", null);
    }

    /// <summary>One line: the failure, then the likely cause and its fix.</summary>
    public static string OneLine(Explanation e) => e.Fix is null ? e.Message : $"{e.Message}; {e.Fix}";

    private const string ContainerAdvice =
        "the kernel refused: a container's seccomp profile or an LSM may forbid this (nonet --self-test tells more)";

    private static Explanation Nonet(string message, string? fix) => new(ExitCodes.NonetFailed, message, fix);

    /// <summary>
    /// A step that failed for want of processes or descriptors, whichever
    /// step it was: the limit to raise.  clone() and fork() give EAGAIN at
    /// RLIMIT_NPROC (threads count too), any open EMFILE at RLIMIT_NOFILE.
    /// </summary>
    public static (string What, string Fix)? ResourceLimit(int errno, HostFacts facts) => errno switch
    {
        Errno.EAGAIN => ("your process limit is reached",
            $"end some of your processes or raise the limit ('ulimit -u' is {facts.ProcessLimit ?? "?"})"),
        Errno.EMFILE => ("too many open files",
            $"raise the limit of open files ('ulimit -n' is {facts.OpenFileLimit ?? "?"})"),
        Errno.ENFILE => ("too many open files in the system", "close some files, or raise fs.file-max"),
        _ => null,
    };

    public static string? UserNamespaceAdvice(int errno, HostFacts facts)
    {
        if (UnmappedIdsAdvice(facts) is { } unmapped)
            return unmapped;
        // Root inside nonet (the host's root mapped to itself alone, without
        // a capability): nonet set this namespace's limit to 0 itself (no
        // nested user namespaces for a root caller), and /proc/sys is
        // read-only there, so no sysctl advice would help.  Root in a user
        // namespace of its own (unshare -r) has its capabilities, and may
        // raise the limit.
        if (facts.Uid == 0 && facts.UidMap?.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries) is ["0", "0", "1"]
            && facts.Sysctl("user.max_user_namespaces") == "0" && facts.EffectiveCapabilities is { } caps && caps.Trim('0').Length == 0)
            return RootInsideNonet;
        if (facts.Sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1")
            return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): "
                + "install nonet's AppArmor profile (the nonet package ships it) or run "
                + "'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0'";
        if (facts.Sysctl("kernel.unprivileged_userns_clone") == "0")
            return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): "
                + "run 'sudo sysctl -w kernel.unprivileged_userns_clone=1'";
        // The limit as this namespace sees it comes first: a zero here is the
        // reason whatever the namespace (the self-test names it the same way).
        if (facts.Sysctl("user.max_user_namespaces") == "0")
            return Limit(facts, "user.max_user_namespaces");
        if (errno == Errno.ENOSPC && facts.InNestedUserNamespace)
            return "nonet runs inside a user namespace that allows no more of them "
                + "(a sandbox such as bwrap --disable-userns, or a container's limit): run nonet outside it";
        if (errno == Errno.ENOSPC)
            return Limit(facts, "user.max_user_namespaces");
        if (errno == Errno.EUSERS)
            return "user namespaces are nested too deeply (the kernel allows 32 levels)";
        if (errno == Errno.EINVAL)
            return "this kernel was built without user namespaces (CONFIG_USER_NS)";
        if (errno is Errno.EPERM or Errno.EACCES)
            return ContainerAdvice;
        return null;
    }

    /// <summary>Said for root inside nonet (or a sandbox that does the same):
    /// the message is the whole explanation, so it replaces the clone line.</summary>
    public const string RootInsideNonet =
        "root inside nonet cannot create user namespaces (nonet forbids them for a root caller)";

    private static string Limit(HostFacts facts, string sysctl) =>
        $"the limit is reached or zero ({sysctl}={facts.Sysctl(sysctl) ?? "?"}): raise it, e.g. 'sudo sysctl -w {sysctl}=10000'";

    private static string? MapAdvice(HostFacts facts)
    {
        if (UnmappedIdsAdvice(facts) is { } unmapped)
            return unmapped;
        // Since Linux 5.12 a map that includes uid 0 needs CAP_SETFCAP in the
        // parent namespace (kernel/user_namespace.c, verify_root_map()); root
        // inside nonet has no capabilities at all.
        if (facts.Uid == 0 && facts.InNestedUserNamespace)
            return "mapping uid 0 needs CAP_SETFCAP in the parent user namespace (Linux 5.12 and later), "
                + "and this root has none (inside nonet, for instance): run nonet as root only from the initial namespace";
        return null;
    }

    private static string? UnmappedIdsAdvice(HostFacts facts)
    {
        if (HostFacts.IsMapped(facts.UidMap, facts.Uid) && HostFacts.IsMapped(facts.GidMap, facts.Gid))
            return null;
        return $"nonet runs inside a user namespace that does not map your uid {facts.Uid}/gid {facts.Gid} "
            + "(as under 'unshare --user' without -r or --map-*): run nonet outside it, or map your ids";
    }

    /// <summary>The names used in self-test reports.</summary>
    public static readonly IReadOnlyDictionary<Step, string> StepNames = new Dictionary<Step, string>
    {
        [Step.SpawnLauncher] = "start launcher",
        [Step.LauncherStart] = "launcher start",
        [Step.Clone] = "clone user namespace",
        [Step.WriteSetgroups] = "write setgroups",
        [Step.WriteUidMap] = "write uid_map",
        [Step.WriteGidMap] = "write gid_map",
        [Step.WaitMaps] = "release child",
        [Step.UnshareNet] = "unshare network namespace",
        [Step.LoopbackUp] = "bring lo up",
        [Step.DropCaps] = "drop capabilities",
        [Step.Listen] = "listen on forwarded ports",
        [Step.ReceiveListeners] = "receive listeners",
        [Step.Helper] = "start publish helper",
        [Step.Dns] = "answer name lookups",
        [Step.Mounts] = "mount namespace",
        [Step.Report] = "watch network calls (--report)",
        [Step.Filter] = "seccomp filter",
        [Step.Exec] = "exec command",
        [Step.LauncherEnded] = "launcher ended early",
    };
}
