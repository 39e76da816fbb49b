using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Nonet.Interop;

/// <summary>
/// Native/early_signals.c, linked into the NativeAOT host: the forwarded
/// signals it held before the runtime started any thread.  Absent when the
/// host runs on the JIT (unit tests): callers fall back.
/// </summary>
internal static unsafe partial class EarlySignals
{
    public const string Library = "nonet_native";

    [LibraryImport(Library, EntryPoint = "nonet_early_signal_mask")]
    private static partial int GetMask(sigset_t* original, sigset_t* held);

    /// <summary>True, with both masks, when the constructor held signals.</summary>
    public static bool TryGet(out sigset_t original, out sigset_t held)
    {
        sigset_t o = default, h = default;
        int rc;
        try
        {
            rc = GetMask(&o, &h);
        }
        catch (System.Exception e) when (e is System.DllNotFoundException or System.EntryPointNotFoundException)
        {
            rc = -1;
        }
        original = o;
        held = h;
        return rc == 0;
    }
}

/// <summary>Native/runtime_start.c: Main tells it that the runtime started,
/// so that only an exit before that is reported as the runtime's failure.</summary>
internal static partial class RuntimeStart
{
    [LibraryImport(EarlySignals.Library, EntryPoint = "nonet_runtime_started")]
    private static partial void Started();

    public static void Confirm()
    {
        try
        {
            Started();
        }
        catch (System.Exception e) when (e is System.DllNotFoundException or System.EntryPointNotFoundException)
        {
            // On the JIT (unit tests) there is no native start-up code.
        }
    }
}
