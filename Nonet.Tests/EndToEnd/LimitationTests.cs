using NUnit.Framework;

namespace Nonet.Tests.EndToEnd;

/// <summary>What README's Limitations say, held to the kernel's behaviour.</summary>
public sealed class LimitationTests(Identity identity) : EndToEndTest(identity)
{
    [Test]
    public void No_other_user_exists_inside_so_apts_sandbox_user_cannot_be_switched_to()
    {
        // apt-get drops to its sandbox user _apt (uid 42) with setgroups()
        // and seteuid(); inside nonet only the caller's own ids are mapped,
        // so both fail, as README says (workaround: -o APT::Sandbox::User=root).
        const string script = """
            import os
            for name, call in (("setgroups", lambda: os.setgroups([])), ("seteuid", lambda: os.seteuid(42))):
                try:
                    call()
                    print(name, "ok")
                except OSError as e:
                    print(name, os.strerror(e.errno))
            """;
        var r = Nonet(Python, "-c", script);
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        // EINVAL: the kernel finds no uid 42 in the namespace, root or not.
        Assert.That(r.Stdout, Is.EqualTo("setgroups Operation not permitted\nseteuid Invalid argument\n"));
    }
}
