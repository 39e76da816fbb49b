using System.Collections.Generic;
using System.IO;
using System.Linq;
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
        string files = page[page.IndexOf(".SH FILES")..page.IndexOf(".SH ", page.IndexOf(".SH FILES") + 1)];
        Assert.That(files, Does.Contain(".TP\n.I /opt/my\\-nonet/bin/nonet\n"));
        Assert.That(files, Does.Contain(".TP\n.I /opt/my\\-nonet/libexec/nonet/nonet\\-launcher\n"));
        string description = page[page.IndexOf(".SH DESCRIPTION")..page.IndexOf(".SH OPTIONS")];
        Assert.That(description, Does.Contain(".IR /opt/my\\-nonet/bin/nonet ,\n"));
        Assert.That(description, Does.Contain(".IR /opt/my\\-nonet/libexec/nonet/nonet\\-launcher ,\n"));
        // Only APPARMOR names the package's launcher, the one its profile
        // attaches to; no other line names a /usr path of nonet's.
        int apparmor = page.IndexOf(".SH APPARMOR");
        string outside = page[..apparmor] + page[page.IndexOf(".SH ", apparmor + 1)..];
        Assert.That(outside, Does.Not.Contain("/usr/bin/nonet").And.Not.Contain("/usr/libexec"));
        Assert.That(page[apparmor..], Does.Contain("/usr/libexec/nonet/nonet\\-launcher"));

        // The packages install with PREFIX=/usr: their page is doc/nonet.1.
        string packaged = Harness.TempDirectory(Who);
        var usr = Make($"install DESTDIR={packaged} PREFIX=/usr");
        Assert.That(usr.ExitCode, Is.Zero, usr.ToString());
        Assert.That(File.ReadAllText($"{packaged}/usr/share/man/man1/nonet.1"), Is.EqualTo(File.ReadAllText($"{Harness.RepositoryRoot}/doc/nonet.1")));
    }

    [Test]
    public void The_man_pages_sections_follow_man_pages_7_with_the_keys_in_CONFIGURATION()
    {
        string page = File.ReadAllText($"{Harness.RepositoryRoot}/doc/nonet.1");
        var sections = page.Split('\n').Where(l => l.StartsWith(".SH ")).Select(l => l[4..].Trim('"')).ToList();
        // man-pages(7)'s order; nonet's own sections (NAME LOOKUPS and the
        // like) may stand between them.
        string[] standard = ["NAME", "SYNOPSIS", "CONFIGURATION", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "RETURN VALUE", "ERRORS",
            "ENVIRONMENT", "FILES", "ATTRIBUTES", "VERSIONS", "STANDARDS", "HISTORY", "NOTES", "CAVEATS", "BUGS", "EXAMPLES",
            "AUTHORS", "REPORTING BUGS", "COPYRIGHT", "SEE ALSO"];
        var present = sections.Where(standard.Contains).ToList();
        Assert.That(present, Is.EqualTo(standard.Where(present.Contains).ToList()), string.Join(", ", sections));
        Assert.That(present, Does.Contain("CONFIGURATION"));
        string configuration = page[page.IndexOf(".SH CONFIGURATION")..page.IndexOf(".SH ", page.IndexOf(".SH CONFIGURATION") + 1)];
        string files = page[page.IndexOf(".SH FILES")..page.IndexOf(".SH ", page.IndexOf(".SH FILES") + 1)];
        foreach (string key in new[] { "shell", "launcher", "forward", "publish", "hint", "report", "report\\-file" })
        {
            Assert.That(configuration, Does.Contain($".BI {key} \" = \""), key);
            Assert.That(files, Does.Not.Contain($".BI {key} \" = \""), key);
        }
    }

    [Test]
    public void Without_the_dotnet_sdk_make_says_in_one_line_what_is_missing()
    {
        string bin = Harness.TempDirectory(Who);
        var setup = Shell($"for t in sh cat uname find id dirname; do ln -s \"$(command -v $t)\" {bin}/$t; done");
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        // A build directory of its own, where nonet has yet to be built.
        string build = Harness.TempDirectory(Who);
        var r = Make($"all BUILD={build}", bin);
        Assert.That(r.ExitCode, Is.EqualTo(2), r.ToString());
        var lines = r.Stderr.TrimEnd('\n').Split('\n');
        Assert.That(lines[0], Is.EqualTo("make needs the .NET 10 SDK (dotnet not found): sudo apt-get install dotnet-sdk-10.0 "
            + "(Ubuntu 24.04 and later; Debian: add Microsoft's repository first, see README.md)"), r.ToString());
        Assert.That(lines, Has.Length.EqualTo(2), "the line, then make's own 'Error 1': " + r);
    }

    [Test]
    public void The_dotnet_cli_runs_without_telemetry_or_first_run_banner()
    {
        // A stand-in dotnet that records its environment and fails.
        string dir = Harness.TempDirectory(Who);
        var setup = Shell($"printf '#!/bin/sh\\nenv > {dir}/env\\nexit 3\\n' > {dir}/dotnet && chmod +x {dir}/dotnet");
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        var r = Shell($"exec /usr/bin/make -s -C {Harness.RepositoryRoot} all BUILD={dir}/build DOTNET={dir}/dotnet",
            new Dictionary<string, string?> { ["MAKEFLAGS"] = null, ["DOTNET_CLI_TELEMETRY_OPTOUT"] = null, ["DOTNET_NOLOGO"] = null });
        Assert.That(r.ExitCode, Is.EqualTo(2), "the stand-in fails the build: " + r);
        var environment = File.ReadAllLines($"{dir}/env");
        Assert.That(environment, Does.Contain("DOTNET_CLI_TELEMETRY_OPTOUT=1"));
        Assert.That(environment, Does.Contain("DOTNET_NOLOGO=1"));
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
        Assert.That(r.Stdout.Split('\n')[0], Is.EqualTo($"note: {prefix}/bin is not on your PATH; add it, e.g. export PATH=\"{prefix}/bin:$PATH\" in your shell's profile"));
        Assert.That(r.Stdout.Split('\n').Count(l => l.Contains("PATH")), Is.EqualTo(1), r.Stdout);
        Assert.That(File.Exists($"{prefix}/bin/nonet"), Is.True);

        var onPath = Make($"install PREFIX={prefix}", $"{prefix}/bin:/usr/bin:/bin");
        Assert.That(onPath.ExitCode, Is.Zero, onPath.ToString());
        Assert.That(onPath.Stdout, Does.Not.Contain("PATH"));
    }

    [Test]
    public void Install_says_when_zsh_does_not_look_in_ZSHCOMPDIR_and_its_line_works()
    {
        string prefix = Harness.TempDirectory(Who);
        string dir = $"{prefix}/share/zsh/site-functions";
        var r = Make($"install PREFIX={prefix}");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        string line = $"fpath=({dir} $fpath)";
        Assert.That(r.Stdout.Split('\n'), Does.Contain(
            $"note: zsh does not look in {dir} by default; for nonet's completion add '{line}' to ~/.zshrc, before compinit"));
        // The line, as a ~/.zshrc would run it, makes zsh find _nonet (as
        // compinit would: in fpath); zsh's own fpath (-f: no rc file) does not.
        string check = "autoload +X -Uz _nonet";
        var with = Shell($"exec zsh -f -c '{line}; {check}'");
        Assert.That(with.ExitCode, Is.Zero, with.ToString());
        var without = Shell($"exec zsh -f -c '{check}'");
        Assert.That(without.ExitCode, Is.Not.Zero, "zsh found nonet's completion without the line: " + without);

        // Nothing to say for a packaging install into DESTDIR.
        var staged = Make($"install DESTDIR={Harness.TempDirectory(Who)} PREFIX=/usr");
        Assert.That(staged.Stdout, Does.Not.Contain("zsh"), staged.ToString());
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
