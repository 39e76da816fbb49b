using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>Who runs nonet in a test.  As root, every end-to-end fixture runs
/// twice: as root, and as an ordinary account, because keeping an ordinary
/// user's UID and GID is the point of nonet.</summary>
public enum Identity
{
    /// <summary>Whoever runs the tests, when that is not root.</summary>
    Caller,
    Root,
    Unprivileged,
}

/// <summary>The outcome of one run: status, raw stdout, stderr.</summary>
public sealed record RunResult(int ExitCode, byte[] StdoutBytes, string Stderr)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// The built binaries, and a way to run them as a given identity.  Tests run
/// build/nonet and build/nonet-launcher; for the unprivileged account, copies
/// go to a world-readable directory, since the checkout may not be.
/// </summary>
public static class Harness
{
    public const string UnprivilegedUser = "nonettest";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static bool IsRoot => Tmds.Linux.LibC.geteuid() == 0;

    public static IEnumerable<Identity> Identities =>
        IsRoot ? [Identity.Root, Identity.Unprivileged] : [Identity.Caller];

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    private static readonly Lazy<string> binDirectory = new(PrepareBinaries);
    private static readonly Lazy<(uint Uid, uint Gid, string Home)> account = new(EnsureAccount);

    /// <summary>A directory with nonet and nonet-launcher that the identity can run.</summary>
    public static string BinDirectory => binDirectory.Value;

    public static string Nonet => Path.Combine(BinDirectory, "nonet");

    public static string SanitizedLauncher => Path.Combine(BinDirectory, "nonet-launcher-sanitized");

    /// <summary>A fresh directory that the identity owns.</summary>
    public static string TempDirectory(Identity identity)
    {
        string dir = Path.Combine(Path.GetTempPath(), "nonet-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        if (identity == Identity.Unprivileged)
            Chown(dir, account.Value.Uid, account.Value.Gid);
        return dir;
    }

    public static (uint Uid, uint Gid) Ids(Identity identity) => identity switch
    {
        Identity.Root => (0, 0),
        Identity.Unprivileged => (account.Value.Uid, account.Value.Gid),
        _ => (Tmds.Linux.LibC.geteuid(), Tmds.Linux.LibC.getegid()),
    };

    public static string Home(Identity identity) => identity switch
    {
        Identity.Unprivileged => account.Value.Home,
        _ => Environment.GetEnvironmentVariable("HOME") ?? "/",
    };

    /// <summary>Starts <paramref name="program"/> as <paramref name="identity"/>.</summary>
    public static Process Start(Identity identity, string program, IEnumerable<string> args,
        IDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? BinDirectory,
        };
        if (identity == Identity.Unprivileged)
        {
            psi.FileName = "setpriv";
            foreach (var a in new[] { $"--reuid={UnprivilegedUser}", $"--regid={UnprivilegedUser}", "--init-groups", "--", program })
                psi.ArgumentList.Add(a);
            psi.Environment["HOME"] = account.Value.Home;
            psi.Environment["USER"] = UnprivilegedUser;
            psi.Environment["LOGNAME"] = UnprivilegedUser;
        }
        else
        {
            psi.FileName = program;
        }
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        // Keep the tests independent of the developer's own settings.
        psi.Environment["XDG_CONFIG_HOME"] = Path.Combine(BinDirectory, "no-config");
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("NONET_", StringComparison.Ordinal)).ToList())
            psi.Environment.Remove(key);
        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                if (value is null)
                    psi.Environment.Remove(key);
                else
                    psi.Environment[key] = value;
            }
        }
        return Process.Start(psi) ?? throw new InvalidOperationException("could not start " + program);
    }

    /// <summary>Runs a program to completion, with a timeout that kills it.</summary>
    public static RunResult Run(Identity identity, string program, IEnumerable<string> args,
        IDictionary<string, string?>? environment = null, byte[]? stdin = null,
        string? workingDirectory = null, TimeSpan? timeout = null)
    {
        using var process = Start(identity, program, args, environment, workingDirectory);
        return Finish(process, stdin, timeout);
    }

    public static RunResult Finish(Process process, byte[]? stdin = null, TimeSpan? timeout = null)
    {
        var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = process.StandardError.ReadToEndAsync();
        var feed = Task.Run(() =>
        {
            try
            {
                if (stdin is not null)
                    process.StandardInput.BaseStream.Write(stdin);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The command need not read its input.
            }
        });
        if (!process.WaitForExit(timeout ?? DefaultTimeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s: {process.StartInfo.FileName} {string.Join(' ', process.StartInfo.ArgumentList)}");
        }
        process.WaitForExit();
        Task.WaitAll([copy, stderr, feed], TimeSpan.FromSeconds(10));
        return new RunResult(process.ExitCode, stdout.ToArray(), stderr.Result);
    }

    /// <summary>Runs a /bin/sh script as the identity; $NONET is nonet's path.
    /// For what ProcessStartInfo cannot express: raw bytes, fds, umask.</summary>
    public static RunResult Shell(Identity identity, string script, IDictionary<string, string?>? environment = null,
        string? workingDirectory = null, TimeSpan? timeout = null, byte[]? stdin = null)
    {
        var env = new Dictionary<string, string?>(environment ?? new Dictionary<string, string?>()) { ["NONET"] = Nonet };
        return Run(identity, "/bin/sh", ["-c", script], env, stdin, workingDirectory, timeout);
    }

    public static IEnumerable<string> ProcessesWithArgument(string marker)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _))
                continue;
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (cmdline.Contains(marker, StringComparison.Ordinal))
                yield return $"{Path.GetFileName(dir)}: {cmdline}";
        }
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "nonet.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository (nonet.sln) above " + AppContext.BaseDirectory);
    }

    private static string PrepareBinaries()
    {
        string build = Path.Combine(RepositoryRoot, "build");
        foreach (var name in new[] { "nonet", "nonet-launcher" })
        {
            if (!File.Exists(Path.Combine(build, name)))
                Assert.Fail($"{Path.Combine(build, name)} is missing: run 'make' first (make test does)");
        }
        if (!IsRoot)
            return build;
        string dir = Path.Combine(Path.GetTempPath(), $"nonet-test-bin-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "nonet", "nonet-launcher", "nonet-launcher-sanitized" })
        {
            string source = Path.Combine(build, name);
            if (File.Exists(source))
                File.Copy(source, Path.Combine(dir, name), overwrite: true);
        }
        Directory.CreateDirectory(Path.Combine(dir, "no-config"));
        foreach (var path in Directory.GetFileSystemEntries(dir).Append(dir))
            File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return dir;
    }

    private static (uint, uint, string) EnsureAccount()
    {
        if (!IsRoot)
            throw new InvalidOperationException("only root switches to the unprivileged account");
        var passwd = File.ReadAllLines("/etc/passwd").FirstOrDefault(l => l.StartsWith(UnprivilegedUser + ":", StringComparison.Ordinal));
        if (passwd is null)
        {
            var useradd = Run(Identity.Root, "useradd", ["--create-home", "--shell", "/bin/sh", "--user-group", UnprivilegedUser]);
            Assert.That(useradd.ExitCode, Is.Zero, "useradd: " + useradd);
            passwd = File.ReadAllLines("/etc/passwd").First(l => l.StartsWith(UnprivilegedUser + ":", StringComparison.Ordinal));
        }
        var fields = passwd.Split(':');
        return (uint.Parse(fields[2]), uint.Parse(fields[3]), fields[5]);
    }

    private static void Chown(string path, uint uid, uint gid)
    {
        var r = Run(Identity.Root, "chown", [$"{uid}:{gid}", path]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
    }
}

/// <summary>
/// Base of every end-to-end fixture: one instance per identity, and an
/// explicit "ignored because" when this host cannot create user namespaces.
/// With NONETTEST_REQUIRE_USERNS=1 (CI sets it) that is a failure instead,
/// so a green run can never come from skipping.
/// </summary>
[TestFixtureSource(typeof(Harness), nameof(Harness.Identities))]
[CancelAfter(60_000)]
public abstract class EndToEndTest(Identity identity)
{
    protected Identity Who { get; } = identity;

    private static readonly Dictionary<Identity, string?> unavailable = new();

    [SetUp]
    public void RequireUserNamespaces()
    {
        string? reason;
        lock (unavailable)
        {
            if (!unavailable.TryGetValue(Who, out reason))
            {
                var probe = Harness.Run(Who, "unshare", ["--user", "--net", "true"]);
                reason = probe.ExitCode == 0 ? null : $"'unshare --user --net true' failed as {Who}: {probe.Stderr.Trim()}";
                unavailable[Who] = reason;
            }
        }
        if (reason is null)
            return;
        if (Environment.GetEnvironmentVariable("NONETTEST_REQUIRE_USERNS") == "1")
            Assert.Fail("user namespaces are required here (NONETTEST_REQUIRE_USERNS=1) but " + reason);
        Assert.Ignore("ignored because this host cannot create user namespaces: " + reason);
    }

    protected RunResult Nonet(params string[] args) => Harness.Run(Who, Harness.Nonet, args);

    protected RunResult NonetWith(IDictionary<string, string?> environment, params string[] args) =>
        Harness.Run(Who, Harness.Nonet, args, environment);

    protected RunResult Shell(string script, IDictionary<string, string?>? environment = null, byte[]? stdin = null, string? workingDirectory = null) =>
        Harness.Shell(Who, script, environment, workingDirectory, stdin: stdin);

    protected (uint Uid, uint Gid) Ids => Harness.Ids(Who);

    protected const string Python = "/usr/bin/python3";
}
