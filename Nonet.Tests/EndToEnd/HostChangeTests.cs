using System.IO;
using System.Linq;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// The command cannot change the host through the kernel's settings beyond
/// /proc/sys (issue 19).  A root caller is uid 0 inside, which passes the
/// owner checks of the host's root-owned files: nonet makes the hardware
/// trees of /proc read-only and forbids nested user namespaces, in which
/// root would hold every capability again and could mount the host's
/// cgroup hierarchy writable.  An ordinary caller owns none of these, and
/// keeps nesting user namespaces (and nonet).
/// </summary>
public sealed class HostChangeTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>The attack of the review: a user, mount and cgroup namespace
    /// of its own, then the cgroup2 filesystem mounted in it, whose files
    /// are the host's.  Prints how far it got.</summary>
    private const string CgroupAttack = """
        import ctypes, os, sys, tempfile
        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWCGROUP = 0x10000000, 0x20000, 0x02000000
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) != 0:
            print("unshare:", os.strerror(ctypes.get_errno())); sys.exit(0)
        print("unshared")
        d = tempfile.mkdtemp()
        if libc.mount(b"none", d.encode(), b"cgroup2", 0, None) != 0:
            print("mount:", os.strerror(ctypes.get_errno())); sys.exit(0)
        print("mounted")
        print("writable" if os.access(d + "/cgroup.procs", os.W_OK) else "read-only")
        """;

    [Test]
    public void No_cgroup_filesystem_of_the_host_can_be_mounted_writable_inside()
    {
        var r = Nonet(Python, "-c", CgroupAttack);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain("writable"), r.ToString());
        if (Who == Identity.Root)
            Assert.That(r.Stdout, Is.EqualTo("unshare: No space left on device\n"), "no nested user namespace for root\n" + r);
        else
            Assert.That(r.Stdout, Does.StartWith("unshared\n"), "an ordinary caller nests user namespaces\n" + r);
        // Without a nested namespace, the command has no capability to mount.
        var direct = Nonet(Python, "-c", """
            import ctypes, os, tempfile
            libc = ctypes.CDLL(None, use_errno=True)
            d = tempfile.mkdtemp()
            print("mounted" if libc.mount(b"none", d.encode(), b"cgroup2", 0, None) == 0 else os.strerror(ctypes.get_errno()))
            """);
        Assert.That(direct.Stdout, Is.EqualTo("Operation not permitted\n"), direct.ToString());
    }

    [Test]
    public void Nested_user_namespaces_are_refused_to_root_and_kept_for_an_ordinary_caller()
    {
        var r = Nonet("sh", "-c", "unshare -U -C -m true; echo unshare=$?; unshare -U -r true 2>/dev/null; echo mapped=$?; "
            + "cat /proc/sys/user/max_user_namespaces; echo 1000 > /proc/sys/user/max_user_namespaces; echo write=$?; "
            + "cat /proc/sys/user/max_user_namespaces");
        var lines = r.Stdout.Split('\n');
        if (Who == Identity.Root)
        {
            Assert.That(lines[..5], Is.EqualTo(new[] { "unshare=1", "mapped=1", "0", "write=2", "0" }), r.ToString());
            Assert.That(r.Stderr, Does.Contain("No space left on device").And.Contain("Read-only file system"), r.ToString());
        }
        else
        {
            Assert.That(lines[..2], Is.EqualTo(new[] { "unshare=0", "mapped=0" }), r.ToString());
            Assert.That(lines[2], Is.Not.EqualTo("0"), r.ToString());
            Assert.That(lines[3], Is.EqualTo("write=2"), "the setting is root's\n" + r);
        }
    }

    /// <summary>The trees of /proc that container engines make read-only,
    /// those this kernel has.</summary>
    private static readonly string[] HardwareTrees =
        new[] { "/proc/irq", "/proc/bus", "/proc/acpi", "/proc/scsi", "/proc/driver", "/proc/fs" }.Where(Directory.Exists).ToArray();

    [Test]
    public void The_hardware_trees_of_proc_cannot_be_changed_from_inside()
    {
        Assert.That(HardwareTrees, Does.Contain("/proc/irq"), "every kernel with interrupts has /proc/irq");
        string affinity = File.ReadAllText("/proc/irq/default_smp_affinity");
        string pciFile = Directory.Exists("/proc/bus/pci")
            ? Directory.GetDirectories("/proc/bus/pci").SelectMany(Directory.GetFiles).FirstOrDefault() ?? ""
            : "";
        // The same value is written back, so that a failure changes nothing.
        string script = """
            import ctypes, os, sys
            libc = ctypes.CDLL(None, use_errno=True)
            def attempt(what, rc):
                print(what, "done" if rc == 0 else os.strerror(ctypes.get_errno()))
            try:
                value = open("/proc/irq/default_smp_affinity").read()
                with open("/proc/irq/default_smp_affinity", "w") as f:
                    f.write(value)
                print("affinity written")
            except OSError as e:
                print("affinity", e.strerror)
            pci = sys.argv[1]
            print("pci", "writable" if pci and os.access(pci, os.W_OK) else "not writable")
            MS_REMOUNT, MS_BIND, MNT_DETACH = 32, 4096, 2
            for tree in sys.argv[2:]:
                attempt("remount " + tree, libc.mount(None, tree.encode(), None, MS_REMOUNT | MS_BIND, None))
                attempt("umount " + tree, libc.umount2(tree.encode(), MNT_DETACH))
            mounts = [line.split()[4] for line in open("/proc/self/mountinfo") if "ro" in line.split()[5].split(",")]
            for tree in sys.argv[2:]:
                print(tree, "read-only mount" if tree in mounts else "no read-only mount")
            """;
        var r = Nonet([Python, "-c", script, pciFile, .. HardwareTrees]);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var lines = r.Stdout.Split('\n');
        Assert.That(lines[0], Is.EqualTo(Who == Identity.Root ? "affinity Read-only file system" : "affinity Permission denied"), r.ToString());
        Assert.That(lines[1], Is.EqualTo("pci not writable"), r.ToString());
        foreach (var tree in HardwareTrees)
        {
            Assert.That(lines, Does.Contain($"remount {tree} Operation not permitted"), r.ToString());
            Assert.That(lines, Does.Contain($"umount {tree} Operation not permitted"), r.ToString());
            if (Who == Identity.Root)
                Assert.That(lines, Does.Contain($"{tree} read-only mount"), r.ToString());
        }
        Assert.That(File.ReadAllText("/proc/irq/default_smp_affinity"), Is.EqualTo(affinity));
    }
}
