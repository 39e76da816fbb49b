using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace Nonet.Launch;

/// <summary>The launcher's steps; the numbers mirror launcher/status.h.</summary>
internal enum LauncherStep : uint
{
    Start = 1,
    Clone = 2,
    WaitMaps = 3,
    UnshareNet = 4,
    LoopbackUp = 5,
    DropCaps = 6,
    Exec = 7,
    Listen = 8,
    Helper = 9,
    Dns = 10,
    Mounts = 11,
    Report = 12,
    Filter = 13,
}

/// <summary>One record from the status pipe: a step and how it ended.</summary>
internal readonly record struct StatusRecord(LauncherStep Step, int Errno, int Value)
{
    public bool Succeeded => Errno == 0;
}

/// <summary>Decodes the launcher's fixed-size records (struct nonet_status).</summary>
internal static class StatusProtocol
{
    public const uint Magic = 0x4e4f4e54;
    public const int RecordSize = 16;

    public static StatusRecord Decode(ReadOnlySpan<byte> record)
    {
        if (record.Length != RecordSize)
            throw new FormatException($"status record of {record.Length} bytes, expected {RecordSize}");
        // The launcher writes its struct in the machine's own byte order.
        uint magic = MemoryMarshal.Read<uint>(record);
        if (magic != Magic)
            throw new FormatException($"status record with bad magic 0x{magic:x8}: launcher and host do not match");
        uint step = MemoryMarshal.Read<uint>(record[4..]);
        if (!IsKnownStep(step))
            throw new FormatException($"status record for unknown step {step}: launcher and host do not match");
        return new StatusRecord(
            (LauncherStep)step,
            MemoryMarshal.Read<int>(record[8..]),
            MemoryMarshal.Read<int>(record[12..]));
    }

    /// <summary>A step this host knows.  A range, not Enum.IsDefined:
    /// that one starts the reflection machinery (type loader, metadata,
    /// caches) on every run, for one comparison (issue 23).  The steps are
    /// numbered without gaps; a test checks each one.</summary>
    public static bool IsKnownStep(uint step) => step is >= (uint)LauncherStep.Start and <= (uint)LauncherStep.Filter; // the last step: keep it so

    /// <summary>struct nonet_run_header: magic, then the length of the strings.</summary>
    public const int RunHeaderSize = 8;

    /// <summary>The run message (launcher/status.h): the header, then each
    /// string NUL-terminated, as a command line holds them.</summary>
    public static byte[] EncodeRunMessage(IReadOnlyList<byte[]> strings)
    {
        int length = 0;
        foreach (var s in strings)
            length += s.Length + 1;
        var message = new byte[RunHeaderSize + length];
        MemoryMarshal.Write(message, Magic);
        MemoryMarshal.Write(message.AsSpan(4), (uint)length);
        int at = RunHeaderSize;
        foreach (var s in strings)
        {
            s.CopyTo(message, at);
            at += s.Length + 1; // the array is zeroed: the NUL is there
        }
        return message;
    }
}
