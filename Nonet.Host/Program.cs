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

    public static string HostPath => Environment.ProcessPath ?? "/proc/self/exe";

    private static int Main()
    {
        SignalForwarding.ReleaseMainThread();
        try
        {
            return Run(RawProcess.Arguments());
        }
        catch (NonetException e)
        {
            StdStreams.Error(e.Message);
            return e.ExitCode;
        }
        catch (Exception e)
        {
            // Never a stack trace: one line, and the status for "nonet failed".
            StdStreams.Error($"internal error: {e.Message}");
            return ExitCodes.NonetFailed;
        }
        finally
        {
            StdStreams.Flush();
        }
    }

    private static int Run(IReadOnlyList<byte[]> args)
    {
        if (args.Count > 0 && args[0].AsSpan().SequenceEqual(SelfTest.Probe.Argument))
            return SelfTest.Probe.Run(args);

        var command = CommandLine.Parse(args);
        if (command.Mode == Mode.Help)
            return command.HelpParse!.Invoke(new InvocationConfiguration { Output = StdStreams.Out, Error = StdStreams.Out });

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
            ConfigPaths.FromEnvironment(Environment.GetEnvironmentVariable), overrides, StdStreams.Error);

        switch (command.Mode)
        {
            case Mode.PrintConfig:
                return PrintConfig(configuration, PlanFor(configuration, command), command.Json);
            case Mode.Version:
                return PrintVersion(configuration);
            case Mode.SelfTest:
                return SelfTest.SelfTestCommand.Run(configuration, command.Json);
        }

        string launcher = LocateLauncher(configuration);
        var hint = configuration.Describe("hint");
        var hintMode = Dns.LookupHint.ParseMode(hint.Value, hint.Source);
        var argv = command.Command.Count > 0 ? command.Command : [ChooseShell(configuration)];
        var resolved = CommandResolver.Resolve(argv[0], RawProcess.GetEnvironmentVariable("PATH"));
        var plan = PlanFor(configuration, command);
        var reportPlan = Report.ReportPlan.From(configuration);
        var inside = HostInside();

        SignalForwarding.HoldInAllThreads();
        using var forwarder = plan.IsEmpty ? null : PortForwarder.Prepare(plan);
        using var reportFile = reportPlan.OpenFile();
        using var recorder = reportPlan.IsEmpty ? null : new Report.AttemptRecorder(inside.Nameservers, reportFile?.Fd ?? -1);
        var result = NamespaceRunner.Run(new LaunchRequest(launcher, resolved.Path, argv, inside, Forwarder: forwarder) { Report = recorder });
        if (result.Failure is { } failure)
        {
            var explanation = FailureExplainer.Explain(failure, HostFacts.Read());
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

    /// <summary>What the namespace gets from this host: its nameservers to
    /// answer, the resolver daemons' sockets to hide, and for root the
    /// kernel's settings made read-only.</summary>
    public static InsidePlan HostInside() =>
        InsidePlan.For(HostFiles.ReadSmall(Dns.ResolvConf.DefaultPath), HostFiles.Exists, Tmds.Linux.LibC.geteuid() == 0);

    public static string LocateLauncher(NonetConfiguration configuration) =>
        LauncherLocator.Locate(configuration.Describe("launcher"), Path.GetDirectoryName(HostPath) ?? "/");

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
        string launcher = LocateLauncher(configuration);
        output.WriteLine($"nonet-launcher {SelfTest.SelfTestCommand.LauncherVersion(launcher) ?? "(version unknown)"} ({launcher})");
        return ExitCodes.Success;
    }

    private static int PrintConfig(NonetConfiguration configuration, ForwardingPlan plan, bool json)
    {
        var settings = configuration.Describe();
        var output = StdStreams.Out;
        if (json)
        {
            using var stream = new MemoryStream();
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                writer.WriteStartObject();
                writer.WriteStartArray("files");
                foreach (var file in ConfigFiles(configuration.Paths))
                {
                    writer.WriteStartObject();
                    writer.WriteString("path", file);
                    writer.WriteBoolean("exists", File.Exists(file));
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteStartObject("settings");
                foreach (var s in settings)
                {
                    writer.WriteStartObject(s.Key);
                    if (s.Value is null)
                        writer.WriteNull("value");
                    else
                        writer.WriteString("value", s.Value);
                    writer.WriteString("source", s.Source);
                    writer.WriteEndObject();
                }
                writer.WriteEndObject();
                writer.WriteStartArray("forwards");
                foreach (var f in plan.Forwards)
                {
                    writer.WriteStartObject();
                    writer.WriteString("spec", f.ToString());
                    writer.WriteString("hostAddress", f.HostAddress.ToString());
                    writer.WriteNumber("hostPort", f.HostPort);
                    writer.WriteNumber("innerPort", f.InnerPort);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteStartArray("publishes");
                foreach (var p in plan.Publishes)
                {
                    writer.WriteStartObject();
                    writer.WriteString("spec", p.ToString());
                    writer.WriteNumber("innerPort", p.InnerPort);
                    writer.WriteNumber("hostPort", p.HostPort);
                    writer.WriteEndObject();
                }
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
            return ExitCodes.Success;
        }

        output.WriteLine("# configuration files, lowest precedence first");
        foreach (var file in ConfigFiles(configuration.Paths))
            output.WriteLine($"#   {file}{(File.Exists(file) ? "" : " (not present)")}");
        output.WriteLine($"#   then {NonetConfiguration.EnvironmentPrefix}* environment variables, then options");
        foreach (var s in settings)
            output.WriteLine($"{s.Key} = {s.Value ?? "(unset)"}    # from {s.Source}");
        if (!plan.IsEmpty)
        {
            output.WriteLine("# port forwarding in effect (settings, then --forward/--publish options)");
            foreach (var f in plan.Forwards)
                output.WriteLine($"#   forward {f}: {f.Describe()}");
            foreach (var p in plan.Publishes)
                output.WriteLine($"#   publish {p}: {p.Describe()}");
        }
        return ExitCodes.Success;
    }

    private static IEnumerable<string> ConfigFiles(ConfigPaths paths)
    {
        yield return paths.System;
        if (paths.User is not null)
            yield return paths.User;
    }
}
