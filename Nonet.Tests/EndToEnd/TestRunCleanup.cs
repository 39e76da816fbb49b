using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// After every end-to-end fixture: what the run started on the machine is
/// stopped.  As root, the nscd leak test starts nscd when it is installed
/// but not running; this stops it again, and only then (an nscd that was
/// running before is the machine's).  The test account (nonettest) stays,
/// as README.md says.
/// </summary>
[SetUpFixture]
public sealed class TestRunCleanup
{
    [OneTimeTearDown]
    public void StopWhatTheRunStarted()
    {
        if (!Nscd.StartedHere)
            return;
        var r = Harness.Run(Identity.Caller, "/usr/sbin/nscd", ["--shutdown"]);
        Assert.That(r.ExitCode, Is.Zero, "stopping the nscd this run started: " + r);
    }
}
