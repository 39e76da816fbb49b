using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Nonet.Cli;
using Nonet.Config;
using Nonet.Forwarding;
using Nonet.Interop;
using Nonet.Launch;

namespace Nonet;

internal static class Program
{
    public static string Version =>
        typeof(Program).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    /// <summary>nonet's own executable, as bytes: it may be installed under
    /// a directory whose name is not UTF-8.</summary>
    public static FilePath HostExecutable { get; } =
        RawFile.ReadLink("/proc/self/exe") is { } exe ? new FilePath(exe) : FilePath.Of(Environment.ProcessPath ?? "/proc/self/exe");

    public static string HostPath => HostExecutable.Shown;

    private static int Main()
    {
        RuntimeStart.Confirm();
        SignalForwarding.ReleaseMainThread();
        try
        {
            int status = Run(RawProcess.Arguments());
            // What nonet printed must have reached stdout (not a full disk,
            // not a closed descriptor), or nonet did not do its job.
            StdStreams.Flush();
            return status;
        }
        catch (OutputException e) when (e is { Fd: 1, Errno: Errno.EPIPE })
        {
            // Whoever read nonet's output has gone ('nonet --help | head -1'):
            // end silently, killed by SIGPIPE as coreutils are (the runtime
            // ignores it, so the write failed with EPIPE instead).
            Launch.Prestart.Cancel();
            DieOfSigpipe();
            return 128 + Tmds.Linux.LibC.SIGPIPE;
        }
        catch (NonetException e)
        {
            StdStreams.Error(e.Message);
            return e.ExitCode;
        }
        catch (Exception e) when (ResourceErrno(e) is int errno && FailureExplainer.ResourceLimit(errno, HostFacts.Read()) is { } limit)
        {
            StdStreams.Error($"{limit.What}: {e.Message}; {limit.Fix}");
            return ExitCodes.NonetFailed;
        }
        catch (Exception e)
        {
            // Never a stack trace: one line, and the status for "nonet failed".
            StdStreams.Error($"internal error: {e.Message}");
            return ExitCodes.NonetFailed;
        }
        finally
        {
            // A launcher started before the runtime that nothing took (the
            // command not found, say) ends before nonet does.
            Launch.Prestart.Cancel();
        }
    }

    /// <summary>SIGPIPE's default action, for this process: the shell sees
    /// status 141, as after 'ls --help | true'.</summary>
    private static unsafe void DieOfSigpipe()
    {
        Tmds.Linux.sigaction action = default;
        action.sa_handler = Tmds.Linux.LibC.SIG_DFL;
        Tmds.Linux.LibC.sigaction(Tmds.Linux.LibC.SIGPIPE, &action, null);
        Tmds.Linux.sigset_t pipe;
        Tmds.Linux.LibC.sigemptyset(&pipe);
        Tmds.Linux.LibC.sigaddset(&pipe, Tmds.Linux.LibC.SIGPIPE);
        Tmds.Linux.LibC.pthread_sigmask(Tmds.Linux.LibC.SIG_UNBLOCK, &pipe, null);
        Tmds.Linux.LibC.raise(Tmds.Linux.LibC.SIGPIPE); // this thread's: it ends here
    }

    /// <summary>The errno behind a failed system call or file operation.
    /// (.NET's IOException carries the raw errno as its HResult.)</summary>
    private static int? ResourceErrno(Exception e) => e switch
    {
        SystemCallException s => s.Errno,
        IOException io when io.GetType() == typeof(IOException) => io.HResult,
        _ => null,
    };

    private static int Run(IReadOnlyList<byte[]> args)
    {
        if (args.Count > 0 && args[0].AsSpan().SequenceEqual(SelfTest.Probe.Argument))
            return SelfTest.Probe.Run(args);

        var command = CommandLine.Parse(args);
        if (command.Mode == Mode.Help)
            return command.HelpParse!.Invoke(new InvocationConfiguration
            {
                Output = StdStreams.Out,
                Error = StdStreams.Out,
                EnableDefaultExceptionHandler = false, // a write error is nonet's one line, not a trace
            });

        var overrides = new Dictionary<string, string>();
        if (command.LauncherOverride is { } launcherOption)
            overrides["launcher"] = launcherOption;
        if (command.HintOverride is { } hintOption)
            overrides["hint"] = hintOption;
        if (command.ReportOverride is { } reportOption)
            overrides["report"] = reportOption;
        if (command.ReportFileOverride is { } reportFileOption)
            overrides["report-file"] = reportFileOption;
        var configuration = NonetConfiguration.Load(
            ConfigPaths.FromEnvironment(RawProcess.GetEnvironmentVariable), overrides, StdStreams.Error);

        switch (command.Mode)
        {
            case Mode.PrintConfig:
                return PrintConfig(configuration, command, PlanFor(configuration, command), AllowFor(configuration, command));
            case Mode.Version:
                return PrintVersion(configuration);
            case Mode.SelfTest:
                return SelfTest.SelfTestCommand.Run(configuration, command.Json);
        }

        var launcher = LocateLauncher(configuration);
        var hint = configuration.Describe("hint");
        var hintMode = Dns.LookupHint.ParseMode(hint.Value, hint.Source);
        var argv = command.Command.Count > 0 ? command.Command : [ChooseShell(configuration)];
        var resolved = CommandResolver.Resolve(argv[0], RawProcess.GetEnvironmentVariable("PATH"));
        var plan = PlanFor(configuration, command);
        var allowList = AllowFor(configuration, command);
        var reportPlan = Report.ReportPlan.From(configuration);
        var inside = HostInside();
        // Before the signals are held, as every check of the settings: a
        // kernel without SECCOMP_IOCTL_NOTIF_ADDFD is one line and 125.
        var allow = Allow.AllowRun.Prepare(allowList, inside.Nameservers);

        // Before the signals are held: a report file that cannot be opened
        // at once must leave nonet as interruptible as any failure before it.
        using var reportFile = reportPlan.OpenFile();
        SignalForwarding.HoldInAllThreads();
        var recorder = reportPlan.IsEmpty ? null : new Report.AttemptRecorder(inside.Nameservers, reportFile?.Fd ?? -1, allow?.Addresses);
        var broker = allow is null ? null : new Allow.ConnectBroker(allow, [.. inside.Nameservers, Allow.AddressClass.InsideIPv4, Allow.AddressClass.InsideIPv6], recorder);
        using var runTime = new Runtime.RunTime(
            plan.IsEmpty ? null : PortForwarder.Prepare(plan, StdStreams.Error),
            recorder is null && broker is null ? null : new Supervision.Supervisor(recorder, broker),
            allow);
        if (recorder is not null)
            runTime.Dns.Answered = recorder.OnDnsAnswered; // queries no watched call carried
        var result = NamespaceRunner.Run(new LaunchRequest(launcher.Bytes, resolved.Path, argv, inside, runTime));
        if (result.Failure is { } failure)
        {
            var explanation = FailureExplainer.Explain(failure, HostFacts.Read());
            if (failure is { Step: Step.Exec, Errno: Errno.ENOENT })
                explanation = FailureExplainer.MissingInterpreter(failure, RawFile.ReadHead(new FilePath(resolved.Path), 256)) ?? explanation;
            StdStreams.Error(FailureExplainer.OneLine(explanation));
            return explanation.ExitCode;
        }
        if (reportPlan.Summary && recorder is not null)
        {
            foreach (var line in Report.ReportSummary.Lines(recorder.Tally, LocaleIsUtf8(), allow?.List, inside.Nameservers))
                StdStreams.Error(line);
        }
        if (Dns.LookupHint.ShouldShow(hintMode, result.ExitStatus, result.Lookups, Tmds.Linux.LibC.isatty(2) == 1))
            StdStreams.Error(Dns.LookupHint.Line(result.Lookups, LocaleIsUtf8()));
        return result.ExitStatus;
    }

    /// <summary>Whether nonet's own messages may use × and … (UserText.LocaleIsUtf8).</summary>
    private static bool LocaleIsUtf8() =>
        UserText.LocaleIsUtf8(name => RawProcess.GetEnvironmentVariable(name) is { } value ? System.Text.Encoding.UTF8.GetString(value) : null);

    /// <summary>The configured forwards and publishes, then the options' ones.</summary>
    /// <remarks>Plain loops, and no plan to build when there is nothing to
    /// forward: this runs before every command, and each iterator, LINQ
    /// operator and interface call here writes pages that a run without
    /// forwards does not need (issue 23).</remarks>
    private static ForwardingPlan PlanFor(NonetConfiguration configuration, ParsedCommandLine command)
    {
        var forwards = new List<(string, SpecSource)>();
        var publishes = new List<(string, SpecSource)>();
        AddConfigured(forwards, configuration.Describe("forward"));
        AddGiven(forwards, command.Forwards, "--forward");
        AddConfigured(publishes, configuration.Describe("publish"));
        AddGiven(publishes, command.Publishes, "--publish");
        return forwards.Count == 0 && publishes.Count == 0 ? ForwardingPlan.None : ForwardingPlan.Build(forwards, publishes);

        static void AddConfigured(List<(string, SpecSource)> specs, EffectiveSetting setting)
        {
            if (string.IsNullOrEmpty(setting.Value))
                return;
            var source = new SpecSource(setting.Source, IsOption: false);
            foreach (var spec in ForwardingPlan.SplitList(setting.Value))
                specs.Add((spec, source));
        }
        static void AddGiven(List<(string, SpecSource)> specs, IReadOnlyList<string> given, string option)
        {
            for (int i = 0; i < given.Count; i++)
                specs.Add((given[i], new SpecSource(option, IsOption: true)));
        }
    }

    /// <summary>The configured --allow rules, then the options' ones.</summary>
    /// <remarks>Nothing to build without one: this runs before every
    /// command, and the LINQ below costs pages that a run without --allow
    /// does not need (issue 23).</remarks>
    private static Allow.AllowList AllowFor(NonetConfiguration configuration, ParsedCommandLine command)
    {
        var setting = configuration.Describe("allow");
        if (string.IsNullOrEmpty(setting.Value) && command.Allows.Count == 0)
            return Allow.AllowList.None;
        var configured = new Allow.AllowSource(setting.Source, IsOption: false);
        return Allow.AllowList.Build(
            ForwardingPlan.SplitList(setting.Value).Select(spec => (spec, configured))
                .Concat(command.Allows.Select(spec => (spec, new Allow.AllowSource("--allow", IsOption: true)))));
    }

    /// <summary>What the namespace gets from this host: its nameservers to
    /// answer, the resolver daemons' sockets to hide, and for root the
    /// kernel's settings made read-only.</summary>
    public static InsidePlan HostInside() =>
        InsidePlan.For(RawFile.ReadText(Dns.ResolvConf.DefaultPath), RawFile.Exists, Tmds.Linux.LibC.geteuid() == 0);

    public static FilePath LocateLauncher(NonetConfiguration configuration) =>
        LauncherLocator.Locate(configuration.Describe("launcher"), HostExecutable.Parent());

    /// <summary>$SHELL, then the 'shell' setting, then /bin/sh.</summary>
    private static byte[] ChooseShell(NonetConfiguration configuration)
    {
        var shell = RawProcess.GetEnvironmentVariable("SHELL");
        if (shell is { Length: > 0 })
            return shell;
        return Encoding.UTF8.GetBytes(configuration.Get("shell") ?? "/bin/sh");
    }

    private static int PrintVersion(NonetConfiguration configuration)
    {
        var output = StdStreams.Out;
        output.WriteLine($"nonet {Version}");
        var launcher = LocateLauncher(configuration);
        output.WriteLine($"nonet-launcher {SelfTest.SelfTestCommand.LauncherVersion(launcher) ?? "(version unknown)"} ({launcher})");
        return ExitCodes.Success;
    }

    private static int PrintConfig(NonetConfiguration configuration, ParsedCommandLine command, ForwardingPlan plan, Allow.AllowList allow)
    {
        var settings = ConfigReport.Effective(configuration, RawProcess.GetEnvironmentVariable("SHELL"), HostExecutable.Parent(),
            command.Forwards, command.Publishes, command.Allows);
        StdStreams.Out.Write(command.Json
            ? ConfigReport.RenderJson(configuration.Files, settings, plan, allow)
            : ConfigReport.RenderText(configuration.Files, settings, plan, allow));
        return ExitCodes.Success;
    }
}
