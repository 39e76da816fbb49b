using System;
using System.Collections.Generic;
using Nonet.Allow;
using Nonet.Dns;
using Nonet.Forwarding;
using Nonet.Launch;
using Nonet.Supervision;
using static Tmds.Linux.LibC;

namespace Nonet.Runtime;

/// <summary>
/// Everything nonet runs beside the command, each capability in its own
/// room: the DNS responder (always), the relays (--forward, --publish) and
/// the supervisor of the seccomp filter (--report, --allow).  The launch
/// (<see cref="NamespaceRunner"/>) calls it at each step of the launcher's
/// protocol, and then runs one event loop for all of them.
/// </summary>
internal sealed class RunTime : IDisposable
{
    /// <summary>After the command exits, how long nonet keeps relaying what it
    /// sent before the end (a server's last reply, say).</summary>
    public const int DrainMilliseconds = 1000;

    private readonly List<ICapability> capabilities = [];
    private bool disposed;

    public RunTime(PortForwarder? relays = null, Supervisor? supervisor = null, AllowRun? allow = null)
    {
        Dns = new DnsResponder(allow?.Dns);
        Relays = relays;
        Supervisor = supervisor;
        Allow = allow;
        capabilities.Add(Dns);
        if (allow is not null)
            capabilities.Add(allow);
        if (relays is not null)
            capabilities.Add(relays);
        if (supervisor is not null)
            capabilities.Add(supervisor);
    }

    public DnsResponder Dns { get; }

    public PortForwarder? Relays { get; }

    public Supervisor? Supervisor { get; }

    /// <summary>--allow: the rules, the addresses DNS gave for allowed
    /// names, and the lo addresses it needs (null: none, and no work).</summary>
    public AllowRun? Allow { get; }

    /// <summary>The launcher's options of every capability.</summary>
    /// <remarks>A plain loop: this runs before every command, and LINQ's
    /// iterators cost pages that a plain run does not need (issue 23).</remarks>
    public IEnumerable<byte[]> LauncherArguments()
    {
        var arguments = new List<byte[]>();
        foreach (var capability in capabilities)
            arguments.AddRange(capability.LauncherArguments());
        return arguments;
    }

    /// <summary>The launcher has started (with the caller's limits, which
    /// the command inherits): nonet may now hold many more descriptors.</summary>
    public void LauncherStarted()
    {
        if (Relays is not null || Supervisor is { Brokers: true })
            RaiseDescriptorLimit();
    }

    /// <summary>The soft limit goes up to the hard one, in nonet only.</summary>
    private static unsafe void RaiseDescriptorLimit()
    {
        ulong* limits = stackalloc ulong[2];
        if (Interop.Sockets.getrlimit(Interop.Sockets.RLIMIT_NOFILE, limits) == 0 && limits[0] < limits[1])
        {
            limits[0] = limits[1];
            Interop.Sockets.setrlimit(Interop.Sockets.RLIMIT_NOFILE, limits);
        }
    }

    /// <summary>Gives each socket the child made inside to its owner: an
    /// errno, or 0 once every forward has its listeners (the child then has
    /// the host's word to go on, when it waits for one).</summary>
    public int TakeInsideSockets(ControlChannel channel)
    {
        int e = channel.Receive(out var sockets);
        if (e != 0)
            return e;
        foreach (var socket in sockets)
        {
            if (socket.Kind != InsideSocketKind.Forward)
            {
                Dns.Take(socket);
            }
            else if (Relays?.TakeListener(socket.Fd, socket.Index) != true)
            {
                close(socket.Fd);
                e = EIO;
            }
        }
        if (e != 0 || (Relays is not null && !Relays.HasAllListeners))
            return EIO;
        return Relays is { HasForwards: true } ? channel.Acknowledge() : 0;
    }

    /// <summary>The command runs: the host's end of the control socket (the
    /// --publish helper answers on it) goes to the relays.</summary>
    public void CommandStarted(ControlChannel channel)
    {
        Relays?.TakeControl(channel.TakeHostEnd());
    }

    public void Attach(EventLoop loop)
    {
        foreach (var capability in capabilities)
            capability.Attach(loop);
    }

    /// <summary>How long the loop may sleep: the soonest any capability
    /// wants to be woken, or -1.</summary>
    public int WakeAfter
    {
        get
        {
            int soonest = -1;
            foreach (var capability in capabilities)
            {
                int after = capability.WakeAfter;
                if (after >= 0 && (soonest < 0 || after < soonest))
                    soonest = after;
            }
            return soonest;
        }
    }

    public void Wake()
    {
        foreach (var capability in capabilities)
            capability.Wake();
    }

    /// <summary>The launcher has ended: each capability finishes, and the
    /// loop runs while one still has data on its way, for at most
    /// <see cref="DrainMilliseconds"/>.</summary>
    public void Finish(EventLoop loop)
    {
        foreach (var capability in capabilities)
            capability.Finish();
        long deadline = Environment.TickCount64 + DrainMilliseconds;
        while (AnyBusy())
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
                return;
            loop.RunOnce((int)left);
        }
    }

    private bool AnyBusy()
    {
        foreach (var capability in capabilities)
        {
            if (capability.Busy)
                return true;
        }
        return false;
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        // The supervisor first: a call still waiting for its answer gets it
        // before anything else closes.
        for (int i = capabilities.Count - 1; i >= 0; i--)
            capabilities[i].Dispose();
    }
}
