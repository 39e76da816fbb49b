using System;
using Nonet.Interop;
using static Nonet.Interop.Sockets;

namespace Nonet.Forwarding;

/// <summary>
/// One direction of a relayed connection: socket to pipe to socket with
/// splice(2), so that the data never enters nonet's memory.  The pipe is
/// filled only when empty, so EAGAIN from the reading splice always means
/// "nothing to read" and never "pipe full".
/// </summary>
internal sealed unsafe class Pump(int from, int to, int pipeRead, int pipeWrite)
{
    private const nuint Chunk = 1 << 20;

    private long buffered;
    private bool endOfInput;

    /// <summary>The input ended and everything was passed on (and the
    /// output shut down for writing).</summary>
    public bool Done { get; private set; }

    public long Moved { get; private set; }

    /// <summary>Moves what can be moved without blocking.  False: the
    /// connection failed (reset, or a socket error).</summary>
    public bool Step()
    {
        while (!Done)
        {
            nint n;
            if (buffered > 0)
            {
                n = splice(pipeRead, null, to, null, (nuint)buffered, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (n > 0)
                {
                    buffered -= n;
                    Moved += n;
                    continue;
                }
                if (n == 0)
                    return false; // the pipe lost data it was holding: cannot happen
            }
            else if (endOfInput)
            {
                shutdown(to, SHUT_WR);
                Done = true;
                return true;
            }
            else
            {
                n = splice(from, null, pipeWrite, null, Chunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (n > 0)
                {
                    buffered += n;
                    continue;
                }
                if (n == 0)
                {
                    endOfInput = true;
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
    private readonly int[] pipes = [-1, -1, -1, -1];
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
        fixed (int* p = pipes)
        {
            if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0 || pipe2(p + 2, O_NONBLOCK | O_CLOEXEC) != 0)
                throw new SystemCallException("pipe2", Sockets.LastError);
        }
        outward = new Pump(inside, outside, pipes[0], pipes[1]);
        inward = new Pump(outside, inside, pipes[2], pipes[3]);
    }

    /// <summary>Starts relaying between two connected sockets, or resets
    /// both if nonet is out of descriptors.  Returns null then.</summary>
    public static Connection? Start(EventLoop loop, int inside, int outside, Action<Connection> closed)
    {
        Connection connection;
        try
        {
            connection = new Connection(loop, inside, outside, closed);
        }
        catch (SystemCallException)
        {
            Reset(inside);
            Reset(outside);
            return null;
        }
        loop.Add(inside, Interest, connection);
        loop.Add(outside, Interest, connection);
        connection.Pump();
        return connection;
    }

    public void OnReady(int fd, uint events)
    {
        if (IsClosed)
            return;
        if ((events & EPOLLERR) != 0)
        {
            Close(reset: true);
            return;
        }
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
        foreach (int fd in pipes)
        {
            if (fd >= 0)
                Sockets.close(fd);
        }
        closed(this);
    }
}

/// <summary>
/// A non-blocking connect() under way; tells <paramref name="done"/> the
/// outcome (0 or an errno) once the socket is writable or failed.
/// </summary>
internal sealed class PendingConnect(EventLoop loop, int socket, Action<int> done) : IReadyHandler
{
    private bool finished;

    public int Socket => socket;

    public void Start() => loop.Add(socket, EPOLLOUT, this);

    public void OnReady(int fd, uint events)
    {
        if (finished || fd != socket)
            return;
        finished = true;
        loop.Remove(socket);
        done(Sockets.SocketError(socket));
    }

    /// <summary>Gives up (nonet is ending): closes the socket unannounced.</summary>
    public void Abandon()
    {
        if (finished)
            return;
        finished = true;
        loop.Remove(socket);
        Sockets.close(socket);
    }
}
