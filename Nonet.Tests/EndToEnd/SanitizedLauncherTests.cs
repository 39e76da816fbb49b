using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>The launcher's paths, success and failure, under AddressSanitizer
/// and UBSan (build/nonet-launcher-sanitized, built by make test).  Any report
/// from a sanitizer fails the test.</summary>
public sealed class SanitizedLauncherTests(Identity identity) : EndToEndTest(identity)
{
    private static readonly Dictionary<string, string?> Options = new()
    {
        ["ASAN_OPTIONS"] = "abort_on_error=0:exitcode=99:detect_leaks=0",
        ["UBSAN_OPTIONS"] = "halt_on_error=1:exitcode=98:print_stacktrace=1",
    };

    private RunResult Run(params string[] args)
    {
        if (!File.Exists(Harness.SanitizedLauncher))
            Assert.Fail($"{Harness.SanitizedLauncher} is missing: run 'make test'");
        var r = NonetWith(Options, ["--launcher", Harness.SanitizedLauncher, .. args]);
        Assert.That(r.Stderr, Does.Not.Contain("Sanitizer").And.Not.Contain("runtime error"), r.ToString());
        return r;
    }

    [Test]
    public void A_command_runs_isolated()
    {
        var r = Run("sh", "-c", "id -u; ip -br link | cut -d' ' -f1; exit 4");
        Assert.That(r.ExitCode, Is.EqualTo(4), r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"{Ids.Uid}\nlo\n"));
    }

    [Test]
    public void An_exec_failure_is_reported()
    {
        string dir = Harness.TempDirectory(Who);
        var make = Shell($"printf '\\177ELF\\0junk' > {dir}/junk && chmod 755 {dir}/junk");
        Assert.That(make.ExitCode, Is.Zero, make.ToString());
        var r = Run($"{dir}/junk");
        Assert.That(r.ExitCode, Is.EqualTo(126), r.ToString());
        Assert.That(r.Stderr, Is.EqualTo($"nonet: {dir}/junk: Exec format error\n"));
    }

    [Test]
    public void A_script_without_a_shebang_runs_with_bin_sh()
    {
        string dir = Harness.TempDirectory(Who);
        var make = Shell($"printf 'echo \"$0\" \"$@\"\\n' > {dir}/script && chmod 755 {dir}/script");
        Assert.That(make.ExitCode, Is.Zero, make.ToString());
        var r = Run($"{dir}/script", "a", "b");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stdout, Is.EqualTo($"{dir}/script a b\n"));
        Assert.That(r.Stderr, Is.Empty);
    }

    [Test]
    public void The_report_filter_runs_clean()
    {
        var r = Run("--report", Python, "-c", "import socket\ntry: socket.socket().connect(('192.0.2.1', 80))\nexcept OSError: pass");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(r.Stderr, Does.Contain("192.0.2.1:80  1×"), r.ToString());
    }

    [Test]
    public void A_signal_ends_the_command()
    {
        var r = Run("sh", "-c", "kill -TERM $$");
        Assert.That(r.ExitCode, Is.EqualTo(143), r.ToString());
    }

    [Test]
    public void Forwarding_and_publishing_run_clean()
    {
        if (!File.Exists(Harness.SanitizedLauncher))
            Assert.Fail($"{Harness.SanitizedLauncher} is missing: run 'make test'");
        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        int forwarded = ((IPEndPoint)echo.LocalEndpoint).Port;
        var echoing = Task.Run(() =>
        {
            using var client = echo.AcceptTcpClient();
            var stream = client.GetStream();
            var buffer = new byte[5];
            stream.ReadExactly(buffer);
            stream.Write(buffer);
        });
        int published;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            published = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        string script = $"import socket\n"
            + $"c = socket.create_connection(('127.0.0.1', {forwarded})); c.sendall(b'hello')\n"
            + "assert c.recv(5) == b'hello'\n"
            + $"s = socket.socket(); s.bind(('127.0.0.1', {published})); s.listen()\n"
            + "a, _ = s.accept(); a.sendall(b'published'); a.close()\n";
        using var nonet = Harness.Start(Who, Harness.Nonet, ["--launcher", Harness.SanitizedLauncher,
            "--forward", $"{forwarded}", "--publish", $"{published}", Python, "-c", script], Options);
        var finished = Task.Run(() => Harness.Finish(nonet));

        string answer = "";
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (answer.Length == 0 && DateTime.UtcNow < deadline && !finished.IsCompleted)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, published);
                answer = new StreamReader(client.GetStream()).ReadToEnd();
            }
            catch (IOException)
            {
            }
            catch (SocketException)
            {
            }
            if (answer.Length == 0)
                Thread.Sleep(20);
        }
        var r = finished.Result;
        Assert.That(r.Stderr, Does.Not.Contain("Sanitizer").And.Not.Contain("runtime error"), r.ToString());
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        Assert.That(answer, Is.EqualTo("published"));
        Assert.That(echoing.Wait(TimeSpan.FromSeconds(5)), Is.True, "the forwarded connection reached the echo server");
    }

    [Test]
    public void A_refused_user_namespace_is_reported()
    {
        var r = Harness.Run(Who, "bwrap", ["--unshare-user", "--disable-userns", "--dev-bind", "/", "/",
            Harness.Nonet, "--launcher", Harness.SanitizedLauncher, "true"], Options);
        Assert.That(r.ExitCode, Is.EqualTo(125), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("nonet: cannot create a user namespace: clone:"));
        Assert.That(r.Stderr, Does.Not.Contain("Sanitizer"));
    }
}
