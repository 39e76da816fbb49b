using System;
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
        if (!Enum.IsDefined((LauncherStep)step))
            throw new FormatException($"status record for unknown step {step}: launcher and host do not match");
        return new StatusRecord(
            (LauncherStep)step,
            MemoryMarshal.Read<int>(record[8..]),
            MemoryMarshal.Read<int>(record[12..]));
    }
}
