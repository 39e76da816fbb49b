using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The launcher's side of launcher/status.h, driven by hand (a Python stand-in
/// for the host): its child never runs anything without its ids mapped and a
/// run message it understands, whatever the host does.
/// </summary>
public sealed class LauncherProtocolTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>Starts the launcher with its three descriptors, reads records up
    /// to CLONE, writes the id maps or not, sends a run message (a good one, or
    /// one with a wrong magic) that would touch MARKER, and prints each status
    /// record as "step err", then whether MARKER exists.</summary>
    private const string StandIn = """
        import os, socket, struct, subprocess, sys
        launcher, marker, maps, magic = sys.argv[1], sys.argv[2], sys.argv[3] == "maps", int(sys.argv[4], 16)
        status_r, status_w = os.pipe()
        go_r, go_w = os.pipe()
        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = (status_w, go_r, inside.fileno())
        p = subprocess.Popen([launcher] + [str(f) for f in fds], pass_fds=fds)
        for f in fds:
            os.close(f)
        status = os.fdopen(status_r, "rb")
        def record():
            data = status.read(16)
            if len(data) < 16:
                return None
            _, step, err, value = struct.unpack("=IIii", data)
            print(step, err)
            return step, err, value
        step = None
        while step != 2:              # START, then CLONE (the child's pid), with
            step, err, child = record()   # the child's first records, which may come before it
        if maps:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{os.geteuid()} {os.geteuid()} 1\n"), ("gid_map", f"{os.getegid()} {os.getegid()} 1\n")):
                with open(f"/proc/{child}/{name}", "w") as f:
                    f.write(text)
        strings = b"".join(s + b"\0" for s in [b"/usr/bin/touch", b"touch", marker.encode()])
        os.write(go_w, struct.pack("=II", magic, len(strings)) + strings)
        os.close(go_w)
        while record():
            pass
        p.wait()
        print("ran" if os.path.exists(marker) else "did not run")
        """;

    private RunResult Drive(bool maps, uint magic = 0x4e4f4e54, string? launcher = null)
    {
        string marker = Path.Combine(Harness.TempDirectory(Who), "marker");
        return Harness.Run(Who, Python, ["-c", StandIn, launcher ?? Path.Combine(Harness.BinDirectory, "nonet-launcher"), marker,
            maps ? "maps" : "no-maps", magic.ToString("x8", System.Globalization.CultureInfo.InvariantCulture)]);
    }

    /// <summary>The records as "step err" lines, CLONE's taken out: the parent
    /// writes it after clone() returns, so the child's first records (its own
    /// namespace, before any wait) may come before or after it.</summary>
    private static string WithoutClone(RunResult r)
    {
        var lines = r.Stdout.Split('\n').ToList();
        Assert.That(lines.Count(l => l == "2 0"), Is.EqualTo(1), "one CLONE record\n" + r);
        Assert.That(lines.IndexOf("2 0"), Is.GreaterThan(lines.IndexOf("1 0")).And.LessThan(lines.FindIndex(l => l.StartsWith("3 ", StringComparison.Ordinal))),
            "CLONE after START, before WAIT_MAPS\n" + r);
        lines.Remove("2 0");
        return string.Join('\n', lines);
    }

    [Test]
    public void With_the_maps_written_and_a_run_message_the_command_runs()
    {
        var r = Drive(maps: true);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        // START, (CLONE,) UNSHARE_NET, LOOPBACK_UP, DROP_CAPS, WAIT_MAPS, LISTEN, EXEC.
        Assert.That(WithoutClone(r), Is.EqualTo("1 0\n4 0\n5 0\n6 0\n3 0\n8 0\n7 0\nran\n"), r.ToString());
    }

    /// <summary>A launcher whose parent writes CLONE late: strace (of the
    /// parent only) holds its second write, CLONE, for 1 s, so the child's
    /// first records come first (its network namespace may wait for the
    /// kernel's network lock while others are torn down, but not that long).  What a loaded machine does now and
    /// then, made certain.</summary>
    private string LauncherWithCloneLate()
    {
        string path = Path.Combine(Harness.TempDirectory(Who), "clone-late");
        WriteLauncherHoldingClone(path, Path.Combine(Harness.BinDirectory, "nonet-launcher"), TimeSpan.FromSeconds(1));
        return path;
    }

    /// <summary>Writes at <paramref name="path"/> a script that runs
    /// <paramref name="launcher"/> under strace, which holds the launcher
    /// parent's second write, CLONE, for <paramref name="hold"/>.</summary>
    internal static void WriteLauncherHoldingClone(string path, string launcher, TimeSpan hold)
    {
        File.WriteAllText(path, "#!/bin/sh\nexec /usr/bin/strace -o /dev/null -e trace=write "
            + $"-e inject=write:delay_enter={(long)hold.TotalMicroseconds}:when=2 {launcher} \"$@\"\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1ed); // 0755
    }

    [Test]
    public void With_CLONE_after_the_childs_first_records_the_command_still_runs()
    {
        var r = Drive(maps: true, launcher: LauncherWithCloneLate());
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("1 0\n4 0\n5 0\n6 0\n2 0\n3 0\n8 0\n7 0\nran\n"), "the child's records before CLONE\n" + r);
    }

    [Test]
    public void The_host_keys_on_the_step_not_on_the_records_place()
    {
        var r = NonetWith(new Dictionary<string, string?> { ["NONET_LAUNCHER"] = LauncherWithCloneLate() }, "sh", "-c", "id -u; id -g; ip -br addr");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.StartWith($"{Ids.Uid}\n{Ids.Gid}\nlo ").And.Contains("127.0.0.1/8 ::1/128"), r.ToString());
        Assert.That(r.Stderr, Is.Empty, r.ToString());
    }

    [Test]
    public void Without_the_maps_the_child_refuses_the_run_message()
    {
        var r = Drive(maps: false);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(WithoutClone(r), Is.EqualTo("1 0\n4 0\n5 0\n6 0\n3 1\ndid not run\n"), "WAIT_MAPS with EPERM\n" + r);
    }

    [Test]
    public void A_run_message_of_another_version_is_refused()
    {
        var r = Drive(maps: true, magic: 0x12345678);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(WithoutClone(r), Is.EqualTo("1 0\n4 0\n5 0\n6 0\n3 71\ndid not run\n"), "WAIT_MAPS with EPROTO\n" + r);
    }
}
