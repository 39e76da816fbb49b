using System;

namespace Nonet;

/// <summary>A failure the user is told about in one line, with the exit status
/// nonet ends with.  Nothing else ever reaches the user as an exception.</summary>
internal class NonetException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>nonet's documented exit statuses (besides the command's own).</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int CheckFailed = 1;
    public const int NonetFailed = 125;
    public const int CannotExecute = 126;
    public const int NotFound = 127;
    public const int SignalBase = 128;
}
