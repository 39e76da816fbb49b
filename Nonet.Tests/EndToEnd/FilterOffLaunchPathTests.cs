using System.IO;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The base seccomp filter is built while the host is still starting, not
/// between the host's run message and the command's execve: the kernel takes
/// a few hundred microseconds to build a filter, which would otherwise delay
/// every command (issue 22: without --allow, no extra work on the launch
/// path).  A Python stand-in for the host starts the launcher and never
/// sends the run message: the child must hold its filter all the same.
/// </summary>
public sealed class FilterOffLaunchPathTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>Starts the launcher with its three descriptors, reads records
    /// up to CLONE (the child's pid), then watches the child's
    /// Seccomp_filters for up to 5 s while it waits for a run message that
    /// never comes; prints the count it saw, then ends the launcher by
    /// closing the go pipe.</summary>
    private const string StandIn = """
        import os, socket, struct, subprocess, sys, time
        launcher = sys.argv[1]
        status_r, status_w = os.pipe()
        go_r, go_w = os.pipe()
        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = (status_w, go_r, inside.fileno())
        p = subprocess.Popen([launcher] + [str(f) for f in fds], pass_fds=fds)
        for f in fds:
            os.close(f)
        status = os.fdopen(status_r, "rb")
        step = None
        while step != 2:
            data = status.read(16)
            if len(data) < 16:
                sys.exit("the launcher ended before CLONE")
            _, step, err, child = struct.unpack("=IIii", data)
        filters = "0"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(f"/proc/{child}/status") as f:
                filters = next(l.split()[1] for l in f if l.startswith("Seccomp_filters:"))
            if filters != "0":
                break
            time.sleep(0.01)
        print("filters before the run message:", filters)
        os.close(go_w)
        p.wait(timeout=10)
        """;

    [Test]
    public void The_base_filter_is_in_place_before_the_run_message()
    {
        var r = Harness.Run(Who, Python, ["-c", StandIn, Path.Combine(Harness.BinDirectory, "nonet-launcher")],
            timeout: System.TimeSpan.FromSeconds(30));
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("filters before the run message: 1\n"), r.ToString());
    }
}
