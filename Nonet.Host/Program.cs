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
                return PrintConfig(configuration, PlanFor(configuration, command), command.Json, AllowFor(configuration, command));
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

        SignalForwarding.HoldInAllThreads();
        using var forwarder = plan.IsEmpty ? null : PortForwarder.Prepare(plan);
        using var reportFile = reportPlan.OpenFile();
        using var recorder = reportPlan.IsEmpty ? null : new Report.AttemptRecorder(inside.Nameservers, reportFile?.Fd ?? -1);
        using var allow = Allow.AllowRun.Prepare(allowList, inside.Nameservers);
        var result = NamespaceRunner.Run(new LaunchRequest(launcher.Bytes, resolved.Path, argv, inside, Forwarder: forwarder) { Report = recorder, Allow = allow });
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
            foreach (var line in Report.ReportSummary.Lines(recorder.Tally))
                StdStreams.Error(line);
        }
        if (Dns.LookupHint.ShouldShow(hintMode, result.ExitStatus, result.Lookups, Tmds.Linux.LibC.isatty(2) == 1))
            StdStreams.Error(Dns.LookupHint.Line(result.Lookups));
        return result.ExitStatus;
    }

    /// <summary>The configured forwards and publishes, then the options' ones.</summary>
    private static ForwardingPlan PlanFor(NonetConfiguration configuration, ParsedCommandLine command)
    {
        IEnumerable<(string, SpecSource)> Configured(string key)
        {
            var setting = configuration.Describe(key);
            var source = new SpecSource(setting.Source, IsOption: false);
            foreach (var spec in ForwardingPlan.SplitList(setting.Value))
                yield return (spec, source);
        }
        IEnumerable<(string, SpecSource)> Given(IEnumerable<string> specs, string option) =>
            specs.Select(spec => (spec, new SpecSource(option, IsOption: true)));

        return ForwardingPlan.Build(
            Configured("forward").Concat(Given(command.Forwards, "--forward")),
            Configured("publish").Concat(Given(command.Publishes, "--publish")));
    }

    /// <summary>The configured --allow rules, then the options' ones.</summary>
    private static Allow.AllowList AllowFor(NonetConfiguration configuration, ParsedCommandLine command)
    {
        var setting = configuration.Describe("allow");
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

    private static int PrintConfig(NonetConfiguration configuration, ForwardingPlan plan, bool json, Allow.AllowList allow)
    {
        var settings = ConfigReport.Effective(configuration, RawProcess.GetEnvironmentVariable("SHELL"), HostExecutable.Parent());
        StdStreams.Out.Write(json
            ? ConfigReport.RenderJson(configuration.Files, settings, plan, allow)
            : ConfigReport.RenderText(configuration.Files, settings, plan, allow));
        return ExitCodes.Success;
    }
}
