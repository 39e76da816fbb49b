using System;
using Nonet.Interop;
using Nonet.Runtime;
using static Nonet.Interop.Sockets;

namespace Nonet.Forwarding;

/// <summary>
/// One direction of a relayed connection.  Data goes through one 1 MiB
/// buffer shared by every connection (the relay is single-threaded): read
/// what there is (64 KiB to 1 MiB at a time), write as much as the other
/// side takes, and keep only the rest, in a buffer of this direction's own.  Measured on loopback,
/// this moved bulk data faster than splice(2) through a pipe (see
/// BENCHMARKS.md), and it holds two descriptors per connection, not six.
/// </summary>
internal sealed unsafe class Pump(int from, int to)
{
    private static readonly byte[] shared = GC.AllocateUninitializedArray<byte>(1 << 20, pinned: true);

    private const int Congested = 64 << 10;

    private byte[]? pending;
    private int readSize = Congested;
    private int pendingOffset;
    private int pendingLength;
    private bool endOfInput;

    /// <summary>The input ended and everything was passed on (and the
    /// output shut down for writing).</summary>
    public bool Done { get; private set; }

    /// <summary>Moves what can be moved without blocking.  False: the
    /// connection failed (reset, or a socket error).</summary>
    public bool Step()
    {
        fixed (byte* buffer = shared)
        {
            while (!Done)
            {
                nint n;
                if (pendingLength > 0)
                {
                    fixed (byte* p = pending)
                        n = send(to, p + pendingOffset, (nuint)pendingLength, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (n > 0)
                    {
                        pendingOffset += (int)n;
                        pendingLength -= (int)n;
                        if (pendingLength == 0 && pending!.Length > Congested)
                            pending = null; // a burst's buffer is not kept
                        continue;
                    }
                }
                else if (endOfInput)
                {
                    shutdown(to, SHUT_WR);
                    Done = true;
                    return true;
                }
                else
                {
                    // Reads grow while the output takes all it is given, and
                    // shrink when it pushes back: what it does not take waits
                    // in this pump's own memory.
                    n = recv(from, buffer, (nuint)readSize, MSG_DONTWAIT);
                    if (n == 0)
                    {
                        endOfInput = true;
                        continue;
                    }
                    if (n > 0)
                    {
                        nint sent = send(to, buffer, (nuint)n, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (sent < 0 && Sockets.LastError is not (EAGAIN or Errno.EINTR))
                            return false;
                        readSize = sent == n ? Math.Min(readSize * 2, shared.Length) : Congested;
                        Keep(buffer, Math.Max(sent, 0), n);
                        continue;
                    }
                }
                int e = Sockets.LastError;
                if (e == Errno.EINTR)
                    continue;
                return e == EAGAIN;
            }
            return true;
        }
    }

    /// <summary>What the output did not take yet, from the shared buffer.</summary>
    private void Keep(byte* buffer, nint sent, nint received)
    {
        int rest = (int)(received - sent);
        if (rest == 0)
            return;
        if (pending is null || pending.Length < rest)
            pending = GC.AllocateUninitializedArray<byte>(Math.Max(rest, Congested));
        new ReadOnlySpan<byte>(buffer + sent, rest).CopyTo(pending);
        pendingOffset = 0;
        pendingLength = rest;
    }
}

/// <summary>
/// A relayed TCP connection between a socket inside nonet's namespace and
/// one outside.  Both are watched edge-triggered; any readiness runs both
/// directions.  A half-close is passed on (shutdown), a reset or error ends
/// both sides with a reset.
/// </summary>
internal sealed unsafe class Connection : IReadyHandler
{
    private const uint Interest = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

    private readonly EventLoop loop;
    private readonly Action<Connection> closed;
    private readonly int inside;
    private readonly int outside;
    private readonly Pump outward;
    private readonly Pump inward;

    public bool IsClosed { get; private set; }

    /// <summary>True once the inside stopped sending and all it sent was passed on.</summary>
    public bool InsideFinished => IsClosed || outward.Done;

    private Connection(EventLoop loop, int inside, int outside, Action<Connection> closed)
    {
        this.loop = loop;
        this.inside = inside;
        this.outside = outside;
        this.closed = closed;
        outward = new Pump(inside, outside);
        inward = new Pump(outside, inside);
    }

    /// <summary>Starts relaying between two connected sockets.</summary>
    public static Connection Start(EventLoop loop, int inside, int outside, Action<Connection> closed)
    {
        var connection = new Connection(loop, inside, outside, closed);
        try
        {
            loop.Add(inside, Interest, connection);
            loop.Add(outside, Interest, connection);
        }
        catch (SystemCallException)
        {
            // The kernel would watch no more (fs.epoll.max_user_watches):
            // this connection fails, nonet and the others go on.
            connection.Close(reset: true);
            return connection;
        }
        connection.Pump();
        return connection;
    }

    public void OnReady(int fd, uint events)
    {
        // An error (EPOLLERR) shows in the next recv() or send(); acting on
        // the flag alone could reset a new connection that reused the fd
        // number of one closed earlier in the same batch of events.
        if (!IsClosed)
            Pump();
    }

    private void Pump()
    {
        if (!outward.Step() || !inward.Step())
            Close(reset: true);
        else if (outward.Done && inward.Done)
            Close(reset: false);
    }

    /// <summary>Ends the connection; with <paramref name="reset"/>, both peers see a reset.</summary>
    public void Close(bool reset)
    {
        if (IsClosed)
            return;
        IsClosed = true;
        loop.Remove(inside);
        loop.Remove(outside);
        if (reset)
        {
            Sockets.Reset(inside);
            Sockets.Reset(outside);
        }
        else
        {
            Sockets.close(inside);
            Sockets.close(outside);
        }
        closed(this);
    }
}

/// <summary>
/// A non-blocking connect() of <paramref name="socket"/> under way, on behalf
/// of the already accepted <paramref name="peer"/>; tells
/// <paramref name="done"/> the outcome (0 or an errno) once the socket is
/// writable or failed.
/// </summary>
internal sealed class PendingConnect(EventLoop loop, int socket, int peer, Action<int> done) : IReadyHandler
{
    private bool finished;

    public void Start()
    {
        try
        {
            loop.Add(socket, EPOLLOUT, this);
        }
        catch (SystemCallException e)
        {
            finished = true;
            done(e.Errno);
        }
    }

    public void OnReady(int fd, uint events)
    {
        if (finished || fd != socket)
            return;
        finished = true;
        loop.Remove(socket);
        int error = Sockets.SocketError(socket);
        done(error == 0 && Sockets.IsConnectedToItself(socket) ? ECONNREFUSED : error);
    }

    /// <summary>Gives up (nonet is ending): both sockets are reset, so that
    /// neither peer takes the end for a complete, empty stream.</summary>
    public void Abandon()
    {
        if (finished)
            return;
        finished = true;
        loop.Remove(socket);
        Sockets.Reset(socket);
        Sockets.Reset(peer);
    }
}
