using System;
using System.Linq;
using Nonet.Launch;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

/// <summary>
/// The checks that replaced Enum.IsDefined on the start-up path (issue 23):
/// each name the host knows is accepted and nothing else is, so that a step
/// or socket kind added to launcher/status.h and to its enum cannot be
/// refused by a range or list left behind.
/// </summary>
public sealed class StartupPathTests
{
    private static byte[] Record(uint step)
    {
        var bytes = new byte[StatusProtocol.RecordSize];
        BitConverter.GetBytes(StatusProtocol.Magic).CopyTo(bytes, 0);
        BitConverter.GetBytes(step).CopyTo(bytes, 4);
        return bytes;
    }

    [Test]
    public void Every_launcher_step_decodes_and_no_other_number_does()
    {
        var steps = Enum.GetValues<LauncherStep>();
        foreach (var step in steps)
            Assert.That(StatusProtocol.Decode(Record((uint)step)).Step, Is.EqualTo(step));
        foreach (uint number in Enumerable.Range(0, 64).Select(n => (uint)n).Append(uint.MaxValue))
        {
            if (steps.Contains((LauncherStep)number))
                continue;
            Assert.Throws<FormatException>(() => StatusProtocol.Decode(Record(number)), $"step {number}");
        }
    }

    [Test]
    public void Every_inside_socket_kind_is_known_and_no_other_number_is()
    {
        var kinds = Enum.GetValues<InsideSocketKind>();
        foreach (var kind in kinds)
            Assert.That(ControlChannel.IsKnownKind(kind), Is.True, kind.ToString());
        foreach (uint number in Enumerable.Range(0, 64).Select(n => (uint)n).Append(uint.MaxValue))
        {
            if (!kinds.Contains((InsideSocketKind)number))
                Assert.That(ControlChannel.IsKnownKind((InsideSocketKind)number), Is.False, $"kind {number}");
        }
    }
}
