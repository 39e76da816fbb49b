using System;
using System.IO;
using System.Text;
using Nonet.Launch;
using NUnit.Framework;

namespace Nonet.Tests.Unit;

public sealed class CommandResolverTests
{
    private string dir = "";

    [SetUp]
    public void CreateTree()
    {
        dir = Path.Combine(Path.GetTempPath(), "nonet-resolve-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var sub in new[] { "a", "b", "c" })
            Directory.CreateDirectory(Path.Combine(dir, sub));
        Executable("b/tool");
        Executable("c/tool");
        File.WriteAllText(Path.Combine(dir, "a/plain"), "");
        Executable("c/plain");
        File.WriteAllText(Path.Combine(dir, "a/only-plain"), "");
        Directory.CreateDirectory(Path.Combine(dir, "a/adir"));
    }

    [TearDown]
    public void RemoveTree()
    {
        // rm, not Directory.Delete: one test leaves a file whose name is not UTF-8.
        using var rm = System.Diagnostics.Process.Start("rm", ["-rf", dir])!;
        rm.WaitForExit(10_000);
    }

    private void Executable(string relative)
    {
        string path = Path.Combine(dir, relative);
        File.WriteAllText(path, "#!/bin/sh\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
    }

    private byte[] PathOf(params string[] subs) => Encoding.UTF8.GetBytes(string.Join(':', Array.ConvertAll(subs, s => Path.Combine(dir, s))));

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Test]
    public void The_first_executable_in_PATH_order_wins()
    {
        Assert.That(Encoding.UTF8.GetString(CommandResolver.Resolve(B("tool"), PathOf("a", "b", "c")).Path), Is.EqualTo($"{dir}/b/tool"));
        Assert.That(Encoding.UTF8.GetString(CommandResolver.Resolve(B("tool"), PathOf("c", "b")).Path), Is.EqualTo($"{dir}/c/tool"));
    }

    [Test]
    public void A_file_without_execute_permission_is_passed_over()
    {
        Assert.That(Encoding.UTF8.GetString(CommandResolver.Resolve(B("plain"), PathOf("a", "c")).Path), Is.EqualTo($"{dir}/c/plain"));
    }

    [Test]
    public void Only_a_non_executable_match_gives_126()
    {
        var e = Assert.Throws<NonetException>(() => CommandResolver.Resolve(B("only-plain"), PathOf("a", "b")))!;
        Assert.That((e.ExitCode, e.Message), Is.EqualTo((126, "only-plain: Permission denied")));
    }

    [Test]
    public void No_match_gives_127()
    {
        var e = Assert.Throws<NonetException>(() => CommandResolver.Resolve(B("missing"), PathOf("a", "b")))!;
        Assert.That((e.ExitCode, e.Message), Is.EqualTo((127, "missing: command not found")));
    }

    [Test]
    public void A_directory_in_PATH_that_does_not_exist_is_skipped()
    {
        Assert.That(Encoding.UTF8.GetString(CommandResolver.Resolve(B("tool"), PathOf("nonexistent", "b")).Path), Is.EqualTo($"{dir}/b/tool"));
    }

    [Test]
    public void A_name_with_a_slash_is_used_as_it_is()
    {
        Assert.That(Encoding.UTF8.GetString(CommandResolver.Resolve(B($"{dir}/b/tool"), PathOf("c")).Path), Is.EqualTo($"{dir}/b/tool"));
        var missing = Assert.Throws<NonetException>(() => CommandResolver.Resolve(B($"{dir}/b/none"), null))!;
        Assert.That((missing.ExitCode, missing.Message), Is.EqualTo((127, $"{dir}/b/none: No such file or directory")));
        var directory = Assert.Throws<NonetException>(() => CommandResolver.Resolve(B($"{dir}/a/adir"), null))!;
        Assert.That((directory.ExitCode, directory.Message), Is.EqualTo((126, $"{dir}/a/adir: Is a directory")));
        var plain = Assert.Throws<NonetException>(() => CommandResolver.Resolve(B($"{dir}/a/plain"), null))!;
        Assert.That((plain.ExitCode, plain.Message), Is.EqualTo((126, $"{dir}/a/plain: Permission denied")));
    }

    [Test]
    public void An_unset_PATH_means_bin_and_usr_bin()
    {
        Assert.That(Encoding.UTF8.GetString(CommandResolver.Resolve(B("sh"), null).Path), Is.EqualTo("/bin/sh"));
    }

    [Test]
    public void A_name_that_is_not_UTF8_is_found_and_shown_escaped()
    {
        byte[] name = [(byte)'t', 0xff, (byte)'x'];
        string path = Path.Combine(dir, "b");
        var full = new byte[Encoding.UTF8.GetByteCount(path) + 1 + name.Length];
        Encoding.UTF8.GetBytes(path).CopyTo(full, 0);
        full[Encoding.UTF8.GetByteCount(path)] = (byte)'/';
        name.CopyTo(full, full.Length - name.Length);
        // .NET cannot name such a file; the shell creates it.
        using var copy = System.Diagnostics.Process.Start("/bin/sh", ["-c", "cp -p \"$1\" \"$(printf \"$2\")\"", "sh", $"{dir}/b/tool", $"{path}/t\\377x"])!;
        Assert.That(copy.WaitForExit(10_000) && copy.ExitCode == 0, "creating the file");
        Assert.That(CommandResolver.Resolve(name, PathOf("b")).Path, Is.EqualTo(full));
        var e = Assert.Throws<NonetException>(() => CommandResolver.Resolve(name, PathOf("a")))!;
        Assert.That(e.Message, Is.EqualTo("t\\xffx: command not found"));
    }

    [TestCase(new byte[] { 0x61, 0x0a, 0x62 }, "a\\x0ab")]
    [TestCase(new byte[] { 0x63, 0x61, 0x66, 0xc3, 0xa9 }, "caf\u00e9")]
    [TestCase(new byte[] { 0xc3 }, "\\xc3")]
    public void Show_escapes_what_a_terminal_should_not_get(byte[] bytes, string shown)
    {
        Assert.That(CommandResolver.Show(bytes), Is.EqualTo(shown));
    }

    [Test]
    public void The_empty_name_is_not_found()
    {
        var e = Assert.Throws<NonetException>(() => CommandResolver.Resolve([], PathOf("a")))!;
        Assert.That(e.ExitCode, Is.EqualTo(127));
    }
}
