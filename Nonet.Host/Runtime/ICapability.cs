using System;
using System.Collections.Generic;

namespace Nonet.Runtime;

/// <summary>
/// Something nonet does for the command while it runs (the DNS room, the
/// relays of --forward and --publish, the supervisor of the seccomp
/// filter).  <see cref="RunTime"/> holds them; the launch steps and the
/// event loop ask each the same questions, so that a new capability is a
/// new class here, not a new parameter and branch in the runner.
/// </summary>
internal interface ICapability : IDisposable
{
    /// <summary>The launcher's options it needs, before the command.</summary>
    IEnumerable<byte[]> LauncherArguments() => [];

    /// <summary>The command is about to run: its descriptors join the loop.</summary>
    void Attach(EventLoop loop);

    /// <summary>Milliseconds after which the loop should wake even with
    /// nothing ready (-1: never); <see cref="Wake"/> is then called.</summary>
    int WakeAfter => -1;

    void Wake()
    {
    }

    /// <summary>The launcher (so the command) has ended: take nothing new,
    /// finish what is under way.</summary>
    void Finish()
    {
    }

    /// <summary>After <see cref="Finish"/>: true while data the command sent
    /// is still on its way, for which the loop keeps running (at most
    /// <see cref="RunTime.DrainMilliseconds"/>).</summary>
    bool Busy => false;
}
