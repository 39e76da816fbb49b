using System.Collections.Generic;
using System.IO;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>make install and the package targets, run on the built tree as
/// each identity (an ordinary user installs under ~/.local or a PREFIX).</summary>
public sealed class MakefileTests(Identity identity) : EndToEndTest(identity)
{
    private RunResult Make(string arguments, string path = "/usr/local/bin:/usr/bin:/bin") =>
        Shell($"exec /usr/bin/make -s -C {Harness.RepositoryRoot} {arguments}", new Dictionary<string, string?> { ["PATH"] = path, ["MAKEFLAGS"] = null });

    [Test]
    public void The_installed_man_page_names_the_installed_paths()
    {
        string dest = Harness.TempDirectory(Who);
        var r = Make($"install DESTDIR={dest} PREFIX=/opt/my-nonet");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        string page = File.ReadAllText($"{dest}/opt/my-nonet/share/man/man1/nonet.1");
        string files = page[page.IndexOf(".SH FILES")..page.IndexOf(".SH ENVIRONMENT")];
        Assert.That(files, Does.Contain(".TP\n.I /opt/my\\-nonet/bin/nonet\n"));
        Assert.That(files, Does.Contain(".TP\n.I /opt/my\\-nonet/libexec/nonet/nonet\\-launcher\n"));
        Assert.That(files, Does.Not.Contain(".I /usr/bin/nonet\n").And.Not.Contain(".I /usr/libexec/nonet/nonet\\-launcher\n"));

        // The packages install with PREFIX=/usr: their page is doc/nonet.1.
        string packaged = Harness.TempDirectory(Who);
        var usr = Make($"install DESTDIR={packaged} PREFIX=/usr");
        Assert.That(usr.ExitCode, Is.Zero, usr.ToString());
        Assert.That(File.ReadAllText($"{packaged}/usr/share/man/man1/nonet.1"), Is.EqualTo(File.ReadAllText($"{Harness.RepositoryRoot}/doc/nonet.1")));
    }

    [Test]
    public void The_man_page_example_creates_the_config_directory()
    {
        string page = File.ReadAllText($"{Harness.RepositoryRoot}/doc/nonet.1");
        int append = page.IndexOf("echo \\(aqforward = 5432");
        Assert.That(page.LastIndexOf(".EX\n", append), Is.EqualTo(page.LastIndexOf(".EX\nmkdir \\-p ~/.config/nonet\n", append)));
    }

    [Test]
    public void Install_says_in_one_line_when_BINDIR_is_not_on_PATH()
    {
        string prefix = Harness.TempDirectory(Who);
        var r = Make($"install PREFIX={prefix}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"note: {prefix}/bin is not on your PATH; add it, e.g. export PATH=\"{prefix}/bin:$PATH\" in your shell's profile\n"));
        Assert.That(File.Exists($"{prefix}/bin/nonet"), Is.True);

        var onPath = Make($"install PREFIX={prefix}", $"{prefix}/bin:/usr/bin:/bin");
        Assert.That(onPath.ExitCode, Is.Zero, onPath.ToString());
        Assert.That(onPath.Stdout, Is.Empty);
    }

    [TestCase("deb", "make deb needs: debhelper dpkg-dev (sudo apt-get install debhelper dpkg-dev)")]
    [TestCase("rpm", "make rpm needs: rpm, for rpmbuild (sudo apt-get install rpm, or dnf install rpm-build)")]
    public void Package_targets_name_the_packages_they_need(string target, string message)
    {
        // A PATH with the basic tools and none of the packaging ones.
        string bin = Harness.TempDirectory(Who);
        var setup = Shell($"for t in sh cat uname find id dirname; do ln -s \"$(command -v $t)\" {bin}/$t; done");
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        var r = Make(target, bin);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        var lines = r.Stderr.TrimEnd('\n').Split('\n');
        Assert.That(lines[0], Is.EqualTo(message), r.ToString());
        Assert.That(lines, Has.Length.EqualTo(2), "the line, then make's own 'Error 1': " + r);
    }
}
