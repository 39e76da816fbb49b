using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>
/// Root drops to an ordinary account and keeps HOME=/root (setpriv, su
/// without '-', sudo -E, docker run --user): the per-user configuration file
/// is out of reach behind another user's directory, and nonet runs as if it
/// were absent, saying so in --print-config and --self-test.  The caller's
/// own unreadable file or directory stays an error.
/// </summary>
public sealed class OtherUsersHomeTests(Identity identity) : EndToEndTest(identity)
{
    /// <summary>For root, a prefix that takes away the capabilities that
    /// override file permissions, so that they apply to it as to anyone (it
    /// keeps those that map its uid in a user namespace).</summary>
    private string WithoutCapabilities => Who == Identity.Root
        ? "setpriv --bounding-set=-dac_override,-dac_read_search --inh-caps=-all -- " : "";

    /// <summary>A home directory of another user, mode 0700, holding a
    /// configuration file that nonet would refuse if it read it; for an
    /// ordinary caller, who cannot make one, /root.</summary>
    private (string Home, uint Owner) OtherUsersHome()
    {
        if (Who == Identity.Caller)
        {
            if (Harness.Shell(Who, "test -x /root").ExitCode == 0)
                Assert.Ignore("ignored because /root can be searched by this caller: there is no other user's home to try");
            return ("/root", 0);
        }
        // Root's is the test account's, the test account's is root's.
        var owner = Who == Identity.Root ? Identity.Unprivileged : Identity.Root;
        string home = Harness.TempDirectory(owner);
        Directory.CreateDirectory(Path.Combine(home, ".config", "nonet"));
        File.WriteAllText(Path.Combine(home, ".config", "nonet", "config"), "this line is wrong\n");
        var chown = Harness.Run(Identity.Root, "chown", ["-R", $"{Harness.Ids(owner).Uid}:{Harness.Ids(owner).Gid}", home]);
        Assert.That(chown.ExitCode, Is.Zero, chown.ToString());
        File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return (home, Harness.Ids(owner).Uid);
    }

    private RunResult NonetAt(IDictionary<string, string?> environment, string args) =>
        Shell($"{WithoutCapabilities}\"$NONET\" {args}", environment);

    private static Dictionary<string, string?> Home(string home) =>
        new() { ["HOME"] = home, ["XDG_CONFIG_HOME"] = null };

    [Test]
    public void Nonet_runs_under_another_users_HOME_as_if_it_had_no_configuration_file()
    {
        var homes = new List<(string, uint)> { OtherUsersHome() };
        // What setpriv, su and sudo -E leave: root's own HOME.
        if (Who == Identity.Unprivileged && Harness.Shell(Who, "test -x /root").ExitCode != 0)
            homes.Add(("/root", 0));
        foreach (var (home, owner) in homes)
            RunsUnder(home, owner);
    }

    private void RunsUnder(string home, uint owner)
    {
        string why = $"{home} belongs to uid {owner} and cannot be searched by uid {Ids.Uid}";
        var env = Home(home);

        var run = NonetAt(env, "sh -c 'echo ran'");
        Assert.That((run.ExitCode, run.Stdout, run.Stderr), Is.EqualTo((0, "ran\n", "")), run.ToString());

        var version = NonetAt(env, "--version");
        Assert.That(version.ExitCode, Is.Zero, version.ToString());
        Assert.That(version.Stdout, Does.StartWith("nonet "));

        var text = NonetAt(env, "--print-config");
        Assert.That(text.ExitCode, Is.Zero, text.ToString());
        Assert.That(text.Stdout, Does.Contain($"#   {home}/.config/nonet/config (skipped: {why})\n"));
        Assert.That(text.Stderr, Is.Empty);

        var json = NonetAt(env, "--print-config --json");
        Assert.That(json.ExitCode, Is.Zero, json.ToString());
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var user = doc.RootElement.GetProperty("files")[1];
            Assert.That(user.GetProperty("path").GetString(), Is.EqualTo($"{home}/.config/nonet/config"));
            Assert.That(user.GetProperty("exists").GetBoolean(), Is.False);
            Assert.That(user.GetProperty("skipped").GetBoolean(), Is.True);
            Assert.That(user.GetProperty("skipped_because").GetString(), Is.EqualTo(why));
        }

        var selfTest = NonetAt(env, "--self-test");
        Assert.That(selfTest.ExitCode, Is.Zero, selfTest.ToString());
        Assert.That(selfTest.Stdout, Does.Contain($"{home}/.config/nonet/config (skipped: {why})"));
        Assert.That(selfTest.Stdout, Does.Match(@"SKIP  home directory visible +" + System.Text.RegularExpressions.Regex.Escape(home) + ": Permission denied, as outside nonet"));

        var selfTestJson = NonetAt(env, "--self-test --json");
        Assert.That(selfTestJson.ExitCode, Is.Zero, selfTestJson.ToString());
        using (var doc = JsonDocument.Parse(selfTestJson.Stdout))
        {
            var files = doc.RootElement.GetProperty("facts").GetProperty("configuration").EnumerateArray().ToList();
            Assert.That(files.Select(f => f.GetProperty("skipped").GetBoolean()), Is.EqualTo(new[] { false, true }));
            Assert.That(files[1].GetProperty("skipped_because").GetString(), Is.EqualTo(why));
        }
    }

    [Test]
    public void XDG_CONFIG_HOME_under_another_users_directory_and_a_link_into_one_are_skipped_too()
    {
        var (home, owner) = OtherUsersHome();
        string why = $"{home} belongs to uid {owner} and cannot be searched by uid {Ids.Uid}";
        var xdg = Shell($"{WithoutCapabilities}\"$NONET\" --print-config", new Dictionary<string, string?> { ["XDG_CONFIG_HOME"] = $"{home}/.config" });
        Assert.That(xdg.ExitCode, Is.Zero, xdg.ToString());
        Assert.That(xdg.Stdout, Does.Contain($"#   {home}/.config/nonet/config (skipped: {why})\n"));

        // The caller's own HOME, whose .config is a link into the other's.
        string own = Harness.TempDirectory(Who);
        var linked = Shell($"ln -s {home}/.config {own}/.config && {WithoutCapabilities}\"$NONET\" --print-config", Home(own));
        Assert.That(linked.ExitCode, Is.Zero, linked.ToString());
        Assert.That(linked.Stdout, Does.Contain($"#   {own}/.config/nonet/config (skipped: {why})\n"));
    }

    [TestCase("chmod 000 \"$HOME/.config/nonet/config\"", "cannot read: Permission denied")]
    [TestCase("chmod 000 \"$HOME/.config/nonet\"", "cannot read: Permission denied")]
    [TestCase("chmod 000 \"$HOME\"", "cannot read: Permission denied")]
    public void The_callers_own_unreadable_file_or_directory_stays_an_error(string makeUnreadable, string problem)
    {
        string home = Harness.TempDirectory(Who);
        string marker = Path.Combine(Harness.TempDirectory(Who), "ran");
        var env = Home(home);
        foreach (var args in new[] { $"touch {marker}", "--print-config", "--version", "--self-test" })
        {
            var r = Shell($"""
                mkdir -p "$HOME/.config/nonet" && echo 'shell = /bin/sh' > "$HOME/.config/nonet/config" || exit 99
                {makeUnreadable}
                {WithoutCapabilities}"$NONET" {args}; s=$?
                chmod 755 "$HOME" "$HOME/.config/nonet"; chmod 644 "$HOME/.config/nonet/config"; exit $s
                """, env);
            Assert.That(r.ExitCode, Is.EqualTo(125), $"{args}: {r}");
            Assert.That(r.Stderr, Is.EqualTo($"nonet: {home}/.config/nonet/config: {problem}\n"), args);
            Assert.That(r.Stdout, Is.Empty, args);
        }
        Assert.That(File.Exists(marker), Is.False, "the command did not run");
    }
}
