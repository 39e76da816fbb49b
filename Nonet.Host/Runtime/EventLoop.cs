using System;
using System.Collections.Generic;
using Nonet.Interop;
using static Nonet.Interop.Sockets;

namespace Nonet.Runtime;

/// <summary>Something that wants to hear when a descriptor is ready.</summary>
internal interface IReadyHandler
{
    void OnReady(int fd, uint events);
}

/// <summary>
/// A single-threaded epoll loop.  The host runs it while the command runs:
/// signals (through a signalfd), listeners, the --publish helper's socket and
/// every relayed connection.  Handlers must cope with a stale event for a
/// descriptor that was closed, and even reused, earlier in the same batch.
/// </summary>
internal sealed unsafe class EventLoop : IDisposable
{
    private const int BatchSize = 64;

    private readonly int epoll;
    private readonly Dictionary<int, IReadyHandler> handlers = [];
    private readonly byte[] events = new byte[BatchSize * 16];
    private bool disposed;

    public EventLoop()
    {
        epoll = epoll_create1(EPOLL_CLOEXEC);
        if (epoll < 0)
            throw new SystemCallException("epoll_create1", Sockets.LastError);
    }

    public void Add(int fd, uint interest, IReadyHandler handler)
    {
        if (Control(EPOLL_CTL_ADD, fd, interest) != 0)
            throw new SystemCallException("epoll_ctl", Sockets.LastError);
        handlers[fd] = handler;
    }

    public void Modify(int fd, uint interest)
    {
        if (Control(EPOLL_CTL_MOD, fd, interest) != 0)
            throw new SystemCallException("epoll_ctl", Sockets.LastError);
    }

    /// <summary>Stops watching <paramref name="fd"/>; call before closing it.
    /// Once the loop is disposed, only its handler is forgotten.</summary>
    public void Remove(int fd)
    {
        if (handlers.Remove(fd) && !disposed)
            Control(EPOLL_CTL_DEL, fd, 0);
    }

    private int Control(int op, int fd, uint interest)
    {
        byte* ev = stackalloc byte[16];
        new Span<byte>(ev, 16).Clear();
        *(uint*)ev = interest;
        *(long*)(ev + EpollDataOffset) = fd;
        return epoll_ctl(epoll, op, fd, ev);
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1: for ever) and
    /// dispatches what is ready.</summary>
    public void RunOnce(int timeoutMs)
    {
        fixed (byte* buffer = events)
        {
            int n = epoll_wait(epoll, buffer, BatchSize, timeoutMs);
            if (n < 0)
            {
                int e = Sockets.LastError;
                if (e == Errno.EINTR)
                    return;
                throw new SystemCallException("epoll_wait", e);
            }
            for (int i = 0; i < n; i++)
            {
                byte* ev = buffer + i * EpollEventSize;
                uint ready = *(uint*)ev;
                int fd = (int)*(long*)(ev + EpollDataOffset);
                if (handlers.TryGetValue(fd, out var handler))
                    handler.OnReady(fd, ready);
            }
        }
    }

    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Sockets.close(epoll);
    }
}
