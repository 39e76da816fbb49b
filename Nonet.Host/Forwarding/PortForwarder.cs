using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Text;
using Nonet.Interop;
using Nonet.Runtime;
using static Nonet.Interop.Sockets;

namespace Nonet.Forwarding;

/// <summary>
/// The host's side of --forward and --publish (launcher/status.h has the
/// launcher's).  Before the launch it binds the published host ports;
/// during it, it takes the forward listeners the launcher's child made
/// inside, and the control socket to the --publish helper; while the
/// command runs, it accepts on both and relays each connection.  Every
/// descriptor it holds is close-on-exec.
/// </summary>
internal sealed unsafe class PortForwarder : ICapability
{
    public const uint FamilyIPv4 = 4;
    public const uint FamilyIPv6 = 6;
    private const uint Magic = Launch.StatusProtocol.Magic;

    private readonly ForwardingPlan plan;
    private readonly Action<string>? warn;
    /// <summary>The publishes whose inner port was found closed, said once each.</summary>
    private readonly HashSet<int> reportedClosed = [];
    /// <summary>Each publish's host listeners: 127.0.0.1, and ::1 when the host has IPv6.</summary>
    private readonly List<(int Fd, int Index)> publishListeners = [];
    private readonly List<(int Fd, ForwardSpec Spec)> forwardListeners = [];
    private readonly HashSet<int> listened = [];
    private readonly HashSet<Connection> connections = [];
    private readonly HashSet<PendingConnect> connecting = [];
    private readonly Dictionary<uint, (int Client, int Index, uint Family)> requests = [];
    private readonly Queue<(uint Id, int Index, uint Family)> unsent = [];
    private int control = -1;
    private uint nextRequest;
    private EventLoop? loop;
    private HelperChannel? helper;

    /// <summary>Accepting failed for want of descriptors; retry shortly.</summary>
    public bool AcceptStalled { get; private set; }

    private PortForwarder(ForwardingPlan plan, Action<string>? warn)
    {
        this.plan = plan;
        this.warn = warn;
    }

    /// <summary>
    /// Binds every published host port.  A port in use fails here, before
    /// anything starts, with one line naming it.  <paramref name="warn"/>
    /// gets the one line said while the command runs (see <see cref="Refused"/>).
    /// </summary>
    public static PortForwarder Prepare(ForwardingPlan plan, Action<string>? warn = null)
    {
        var forwarder = new PortForwarder(plan, warn);
        try
        {
            for (int i = 0; i < plan.Publishes.Count; i++)
            {
                int port = plan.Publishes[i].HostPort;
                int v4 = ListenOnHost(IPAddress.Loopback, port, optional: false);
                forwarder.publishListeners.Add((v4, i));
                // localhost may be ::1 first: listen there too, on the same
                // port (the one the kernel chose, for port 0).  A host
                // without IPv6 has IPv4 only.
                int v6 = ListenOnHost(IPAddress.IPv6Loopback, LocalPort(v4), optional: port == 0);
                if (v6 >= 0)
                    forwarder.publishListeners.Add((v6, i));
            }
            return forwarder;
        }
        catch
        {
            forwarder.Dispose();
            throw;
        }
    }

    /// <summary>A listener on <paramref name="loopback"/>:PORT, or -1 for
    /// ::1 on a host without IPv6 (or, when <paramref name="optional"/>, on
    /// any failure there).</summary>
    private static int ListenOnHost(IPAddress loopback, int port, bool optional)
    {
        bool v6 = loopback.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && v6 && Sockets.LastError == EAFNOSUPPORT)
            return -1;
        if (fd < 0)
            throw new SystemCallException("socket", Sockets.LastError);
        byte* address = stackalloc byte[28];
        int length = FillAddress(address, loopback, port);
        int one = 1;
        // SO_REUSEADDR lets nonet bind again a port that its previous run
        // left in TIME_WAIT; a port someone listens on still fails.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(int));
        if (v6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(int));
        if (bind(fd, address, length) != 0 || listen(fd, SOMAXCONN) != 0)
        {
            int e = Sockets.LastError;
            close(fd);
            if (v6 && (optional || e is EADDRNOTAVAIL or EAFNOSUPPORT))
                return -1;
            string where = v6 ? $"[::1]:{port}" : $"127.0.0.1:{port}";
            throw new NonetException(ExitCodes.NonetFailed, e switch
            {
                EADDRINUSE => $"cannot publish port {port}: {where} is already in use",
                Errno.EACCES => $"cannot publish port {port}: binding {where} needs privileges "
                    + $"(ports below net.ipv4.ip_unprivileged_port_start={UnprivilegedPortStart()})",
                _ => $"cannot publish port {port}: {where}: {Libc.Describe(e)}",
            });
        }
        return fd;
    }

    private static string UnprivilegedPortStart()
    {
        try
        {
            return System.IO.File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim();
        }
        catch (Exception e) when (e is System.IO.IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }

    /// <summary>The host port a publish listens on (its spec's, or the one
    /// the kernel chose for port 0).</summary>
    public int PublishedPort(int index) => LocalPort(publishListeners.First(l => l.Index == index).Fd);

    /// <summary>The launcher's options, before its STATUS_FD.</summary>
    public IEnumerable<byte[]> LauncherArguments()
    {
        static byte[] Ascii(int value) => Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture));
        foreach (var forward in plan.Forwards)
        {
            yield return "-f"u8.ToArray();
            yield return Ascii(forward.InnerPort);
        }
        foreach (var publish in plan.Publishes)
        {
            yield return "-p"u8.ToArray();
            yield return Ascii(publish.InnerPort);
        }
    }

    /// <summary>Takes a listener the launcher's child made inside for
    /// --forward number <paramref name="index"/>; false if there is none such.</summary>
    public bool TakeListener(int fd, int index)
    {
        if (index < 0 || index >= plan.Forwards.Count)
            return false;
        forwardListeners.Add((fd, plan.Forwards[index]));
        listened.Add(index);
        return true;
    }

    /// <summary>Every forward has its listeners (a kernel without IPv6 gives
    /// one per forward, else two).</summary>
    public bool HasAllListeners => listened.Count == plan.Forwards.Count;

    /// <summary>The child waits for the host's word only when it made
    /// forward listeners.</summary>
    public bool HasForwards => plan.Forwards.Count > 0;

    /// <summary>Takes the host's end of the control socket, over which the
    /// --publish helper answers.</summary>
    public void TakeControl(int fd) => control = fd;

    /// <summary>Starts accepting and relaying, in <paramref name="eventLoop"/>.</summary>
    public void Attach(EventLoop eventLoop)
    {
        loop = eventLoop;
        foreach (var (fd, spec) in forwardListeners)
            loop.Add(fd, EPOLLIN | EPOLLET, new Acceptor(this, fd, inner => Forward(inner, spec)));
        foreach (var (fd, index) in publishListeners)
            loop.Add(fd, EPOLLIN | EPOLLET, new Acceptor(this, fd, client => Publish(client, index)));
        if (plan.Publishes.Count > 0)
        {
            helper = new HelperChannel(this);
            loop.Add(control, EPOLLIN, helper);
        }
    }

    /// <summary>After a shortage of descriptors, accepting is retried every 100 ms.</summary>
    public int WakeAfter => AcceptStalled ? 100 : -1;

    public void Wake() => RetryAccepting();

    /// <summary>Retries accepting after a shortage of descriptors.</summary>
    public void RetryAccepting()
    {
        if (!AcceptStalled || loop is null)
            return;
        AcceptStalled = false;
        foreach (var (fd, spec) in forwardListeners)
            AcceptAll(fd, inner => Forward(inner, spec));
        foreach (var (fd, index) in publishListeners)
            AcceptAll(fd, client => Publish(client, index));
    }

    private sealed class Acceptor(PortForwarder owner, int listener, Action<int> accepted) : IReadyHandler
    {
        public void OnReady(int fd, uint events) => owner.AcceptAll(listener, accepted);
    }

    private void AcceptAll(int listener, Action<int> accepted)
    {
        while (true)
        {
            int fd = accept4(listener, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0)
            {
                accepted(fd);
                continue;
            }
            int e = Sockets.LastError;
            if (e is Errno.EINTR or ECONNABORTED)
                continue;
            if (e is EMFILE or ENFILE or ENOBUFS or ENOMEM)
                AcceptStalled = true;
            return;
        }
    }

    /// <summary>A connection inside to a forwarded port: connect to the host
    /// service; if it is down, the inside client sees a reset.</summary>
    private void Forward(int inner, ForwardSpec spec)
    {
        int outer = socket(FamilyOf(spec.HostAddress), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (outer < 0)
        {
            Reset(inner);
            return;
        }
        byte* address = stackalloc byte[28];
        int length = FillAddress(address, spec.HostAddress, spec.HostPort);
        if (connect(outer, address, length) == 0)
        {
            Relay(inner, outer);
            return;
        }
        if (Sockets.LastError != EINPROGRESS)
        {
            close(outer);
            Reset(inner);
            return;
        }
        PendingConnect? pending = null;
        pending = new PendingConnect(loop!, outer, inner, error =>
        {
            connecting.Remove(pending!);
            if (error == 0)
            {
                Relay(inner, outer);
                return;
            }
            close(outer);
            Reset(inner);
        });
        connecting.Add(pending);
        pending.Start();
    }

    private void Relay(int inside, int outside)
    {
        var connection = Connection.Start(loop!, inside, outside, c => connections.Remove(c));
        if (!connection.IsClosed)
            connections.Add(connection);
    }

    /// <summary>A connection to a published host port: ask the helper inside
    /// for a socket to the command's server.</summary>
    private void Publish(int client, int index) => Request(client, index, FamilyIPv4);

    private void Request(int client, int index, uint family)
    {
        if (helper is null || helper.Ended)
        {
            Reset(client);
            return;
        }
        uint id = nextRequest++;
        requests[id] = (client, index, family);
        unsent.Enqueue((id, index, family));
        helper.Flush();
    }

    /// <summary>The helper's answer to request <paramref name="id"/>: a socket
    /// whose connect() inside has begun, or an errno.</summary>
    private void Answered(uint id, int error, int inner)
    {
        if (!requests.Remove(id, out var request))
        {
            if (inner >= 0)
                close(inner);
            return;
        }
        if (error != 0)
        {
            Refused(request, error);
            return;
        }
        PendingConnect? pending = null;
        pending = new PendingConnect(loop!, inner, request.Client, result =>
        {
            connecting.Remove(pending!);
            if (result == 0)
            {
                Relay(inner, request.Client);
                return;
            }
            close(inner);
            Refused(request, result);
        });
        connecting.Add(pending);
        pending.Start();
    }

    /// <summary>Nothing listens on 127.0.0.1 inside: try ::1, then give up
    /// with a reset (the host client's connection was already accepted).
    /// The first time a publish finds neither, say which inner port was
    /// tried: a reset alone does not tell a spec whose ports are the wrong
    /// way round (0.2.0 put the inner port first) from a server that is down.</summary>
    private void Refused((int Client, int Index, uint Family) request, int error)
    {
        if (error == ECONNREFUSED && request.Family == FamilyIPv4)
        {
            Request(request.Client, request.Index, FamilyIPv6);
            return;
        }
        // An IPv6 request is made only after 127.0.0.1 refused.  The line
        // goes out before the reset, which the client may be waiting for.
        if (request.Family == FamilyIPv6 && warn is not null && reportedClosed.Add(request.Index))
            warn(ClosedMessage(plan.Publishes[request.Index]));
        Reset(request.Client);
    }

    /// <summary>The line said once per publish whose inner port had nothing listening.</summary>
    public static string ClosedMessage(PublishSpec spec) =>
        $"--publish {spec}: a connection to port {spec.HostPort} was reset: nothing listened on port {spec.InnerPort} inside (said once)";

    /// <summary>The control socket to the --publish helper.</summary>
    private sealed class HelperChannel(PortForwarder owner) : IReadyHandler
    {
        private bool wantWrite;

        public bool Ended { get; private set; }

        public void OnReady(int fd, uint events)
        {
            if (Ended)
                return;
            if ((events & EPOLLOUT) != 0)
                Flush();
            if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0)
                Receive();
        }

        public void Flush()
        {
            var request = stackalloc uint[4];
            while (!Ended && owner.unsent.TryPeek(out var next))
            {
                request[0] = Magic;
                request[1] = next.Id;
                request[2] = (uint)next.Index;
                request[3] = next.Family;
                nint n = send(owner.control, request, 16, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n == 16)
                {
                    owner.unsent.Dequeue();
                    continue;
                }
                int e = Sockets.LastError;
                if (n < 0 && e == Errno.EINTR)
                    continue;
                if (n < 0 && e == EAGAIN)
                {
                    Watch(write: true);
                    return;
                }
                End();
                return;
            }
            Watch(write: false);
        }

        private void Watch(bool write)
        {
            if (write == wantWrite || Ended)
                return;
            wantWrite = write;
            owner.loop!.Modify(owner.control, write ? EPOLLIN | EPOLLOUT : EPOLLIN);
        }

        private void Receive()
        {
            byte* reply = stackalloc byte[16];
            int controlSize = CmsgDataOffset + 8;
            byte* cmsg = stackalloc byte[controlSize];
            while (!Ended)
            {
                var iov = new IoVec { Base = reply, Length = 16 };
                var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = cmsg, ControlLength = (nuint)controlSize };
                nint n = recvmsg(owner.control, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0 && Sockets.LastError == Errno.EINTR)
                    continue;
                if (n < 0 && Sockets.LastError == EAGAIN)
                    return;
                if (n <= 0)
                {
                    End();
                    return;
                }
                int fd = -1;
                if (message.ControlLength >= (nuint)(CmsgDataOffset + sizeof(int))
                    && *(int*)(cmsg + 8) == SOL_SOCKET && *(int*)(cmsg + 12) == SCM_RIGHTS)
                    fd = *(int*)(cmsg + CmsgDataOffset);
                if (n != 16 || *(uint*)reply != Magic)
                {
                    if (fd >= 0)
                        close(fd);
                    continue;
                }
                int error = *(int*)(reply + 8);
                if (error == 0 && fd < 0)
                    error = Errno.EIO;
                owner.Answered(*(uint*)(reply + 4), error, fd);
            }
        }

        /// <summary>The helper is gone (the command killed it, or it is
        /// ending): every waiting and later publish connection is reset.</summary>
        public void End()
        {
            if (Ended)
                return;
            Ended = true;
            owner.loop!.Remove(owner.control);
            foreach (var (client, _, _) in owner.requests.Values)
                Reset(client);
            owner.requests.Clear();
            owner.unsent.Clear();
        }
    }

    /// <summary>True while data the command sent may still be on its way:
    /// a connection carries it, or a forward's connect() is under way.</summary>
    public bool InsideSending => connecting.Count > 0 || connections.Any(c => !c.InsideFinished);

    public bool Busy => InsideSending;

    public void Finish() => StopAccepting();

    /// <summary>The command ended: no new connections (those waiting to be
    /// accepted are reset as the listeners close); the helper is released.
    /// Connections under way may finish, see <see cref="InsideSending"/>.</summary>
    public void StopAccepting()
    {
        foreach (var (fd, _) in forwardListeners)
        {
            loop?.Remove(fd);
            close(fd);
        }
        forwardListeners.Clear();
        foreach (var (fd, _) in publishListeners)
        {
            loop?.Remove(fd);
            close(fd);
        }
        publishListeners.Clear();
        helper?.End();
        if (control >= 0)
        {
            close(control);
            control = -1;
        }
    }

    /// <summary>Ends everything.  Whatever is cut short is reset, so that no
    /// peer mistakes it for a complete stream; a connection whose inside
    /// ended its stream is closed normally, and the kernel still delivers
    /// what it holds of it.</summary>
    public void Dispose()
    {
        StopAccepting();
        foreach (var pending in connecting.ToList())
            pending.Abandon();
        connecting.Clear();
        foreach (var connection in connections.ToList())
            connection.Close(reset: !connection.InsideFinished);
    }
}
