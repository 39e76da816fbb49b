using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>nonet never hangs where a shell would not (issue 19): a report
/// file that would block in open(), a command that makes the launcher its
/// tracer.</summary>
public sealed class HangTests(Identity identity) : EndToEndTest(identity)
{
    [Test]
    public void A_report_file_that_is_a_FIFO_with_no_reader_is_refused_at_once()
    {
        string dir = Harness.TempDirectory(Who);
        string fifo = Path.Combine(dir, "report");
        var made = Harness.Run(Who, "mkfifo", [fifo]);
        Assert.That(made.ExitCode, Is.Zero, made.ToString());
        var clock = Stopwatch.StartNew();
        var r = Harness.Run(Who, Harness.Nonet, ["--report-file", fifo, "sh", "-c", "echo ran"], timeout: TimeSpan.FromSeconds(10));
        clock.Stop();
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stdout, Is.Empty, "the command must not run\n" + r);
        Assert.That(r.Stderr, Is.EqualTo($"nonet: cannot write the report to {fifo}: a FIFO with no reader\n"), r.ToString());
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "at once");

        // With its reader there (the shell holds it open), the FIFO gets the report.
        var read = Shell($"exec 3<>{fifo}; \"$NONET\" --report-file {fifo} {Python} -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.1', 9))\" 2>/dev/null; "
            + "echo status=$?; timeout 5 head -n 1 <&3");
        Assert.That(read.Stdout, Does.StartWith("status=1\n").And.Contains("\"192.0.2.1\""), read.ToString());
    }

    /// <summary>ptrace(PTRACE_TRACEME) makes the command's parent, the
    /// launcher, its tracer; the signal then stops it for the tracer.</summary>
    private const string TraceMe = """
        import ctypes, os, signal, sys
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(0, 0, None, None) != 0:
            print("PTRACE_TRACEME:", os.strerror(ctypes.get_errno())); sys.exit(2)
        print("traced", flush=True)
        if sys.argv[1] == "self":
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        else:
            signal.pause()
        print("survived", flush=True)
        """;

    [TestCase("SIGTERM", 143)]
    [TestCase("SIGUSR1", 138)]
    [TestCase("SIGINT", 130)]
    public void A_command_that_makes_the_launcher_its_tracer_still_dies_of_its_own_signal(string signal, int status)
    {
        // sh -c gives 128+N for the signal here, as it does for a command no
        // one traces; nonet must not hang in the trace stop.
        var clock = Stopwatch.StartNew();
        var r = Harness.Run(Who, Harness.Nonet, [Python, "-c", TraceMe, "self", signal], timeout: TimeSpan.FromSeconds(15));
        Assert.That(r.ExitCode, Is.EqualTo(status), r.ToString());
        Assert.That(r.Stdout, Is.EqualTo("traced\n"), r.ToString());
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), r.ToString());
    }

    [TestCase("SIGTERM", 143)]
    [TestCase("SIGINT", 130)]
    public void A_traced_command_still_ends_when_nonet_is_signalled(string signal, int status)
    {
        using var nonet = Harness.Start(Who, Harness.Nonet, [Python, "-c", TraceMe, "wait", signal]);
        try
        {
            var line = nonet.StandardOutput.ReadLineAsync();
            Assert.That(line.Wait(TimeSpan.FromSeconds(20)) && line.Result == "traced", Is.True, "the command should have started");
            Thread.Sleep(200); // in signal.pause() by now, most likely; either way the signal ends it
            Tmds.Linux.LibC.kill(nonet.Id, signal == "SIGTERM" ? Tmds.Linux.LibC.SIGTERM : Tmds.Linux.LibC.SIGINT);
            Assert.That(nonet.WaitForExit(10_000), Is.True, "nonet hung after " + signal);
            Assert.That(nonet.ExitCode, Is.EqualTo(status));
            Assert.That(nonet.StandardOutput.ReadToEnd(), Is.Empty, "the signal ended the command");
        }
        finally
        {
            if (!nonet.HasExited)
                nonet.Kill(entireProcessTree: true);
        }
    }
}
