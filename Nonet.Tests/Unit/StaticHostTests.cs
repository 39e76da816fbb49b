using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Nonet.Tests.EndToEnd;

namespace Nonet.Tests.Unit;

/// <summary>
/// The host is a static glibc executable (Nonet.Host.csproj, issue 15):
/// there is no dynamic linker at run time, so anything that looks a symbol
/// up (dlsym, NativeLibrary) finds nothing, and glibc's NSS (getpwnam,
/// getaddrinfo) and dlopen need shared libraries of the very glibc the
/// host was linked with.  None of that may be compiled into the host; the
/// ILC map file of the build says what is.
/// </summary>
public sealed class StaticHostTests
{
    private static string MapFile => Path.Combine(Harness.RepositoryRoot,
        "Nonet.Host/obj/Release/net10.0/linux-x64/native/nonet.map.xml");

    /// <summary>Managed entry points that reach glibc's dynamic linker or
    /// NSS: System.Native's (Interop.Sys), NativeLibrary's, and direct
    /// P/Invokes of the functions themselves.</summary>
    private static readonly Regex NeedsSharedLibraries = new(
        @"Interop_Sys__(GetPwUidR|GetPwNamR|GetGrGidR|GetGrNamR|GetGroupList|GetAddrInfo|GetHostEntryForName|GetNameInfo|LoadLibrary|GetProcAddress|FreeLibrary|GetDefaultSearchOrderPseudoHandle)"
        + @"|NativeLibrary__\w+"
        + @"|__(getpwnam|getpwuid|getgrnam|getgrgid|getgrouplist|initgroups|getaddrinfo|gethostbyname|getnameinfo|dlopen|dlsym)(_r)?_",
        RegexOptions.IgnoreCase);

    [Test]
    public void The_host_is_a_static_executable()
    {
        // An ELF file with a PT_INTERP program header is started by ld.so.
        byte[] elf = File.ReadAllBytes(Path.Combine(Harness.RepositoryRoot, "build/nonet"));
        Assert.That(elf.AsSpan(0, 4).ToArray(), Is.EqualTo(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }));
        ulong phoff = System.BitConverter.ToUInt64(elf, 0x20);
        int phentsize = System.BitConverter.ToUInt16(elf, 0x36);
        int phnum = System.BitConverter.ToUInt16(elf, 0x38);
        var types = Enumerable.Range(0, phnum).Select(i => System.BitConverter.ToUInt32(elf, (int)phoff + i * phentsize)).ToArray();
        Assert.That(types, Has.Some.EqualTo(1u), "a PT_LOAD header");
        Assert.That(types, Has.None.EqualTo(3u), "PT_INTERP: build/nonet needs the dynamic linker");
    }

    [Test]
    public void The_host_holds_no_code_that_needs_the_dynamic_linker_or_NSS()
    {
        Assert.That(File.Exists(MapFile), Is.True, $"{MapFile}: build with 'make' first");
        string map = File.ReadAllText(MapFile);
        Assert.That(map, Does.Contain("Interop_Sys__Open"), "the map lists System.Native's entry points");
        var found = NeedsSharedLibraries.Matches(map).Select(m => m.Value).Distinct().ToArray();
        Assert.That(found, Is.Empty);
    }
}
