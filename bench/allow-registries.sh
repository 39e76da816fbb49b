#!/bin/sh
# bench/allow-registries.sh NONET: --allow against the real package
# registries (issue 22), as the user who runs it.  The one place where
# nonet's own checks send traffic outside this machine; the tests never do.
#
# For npm and for dotnet, each run with a fresh HOME and empty caches:
#
#   outside nonet                    the control: must succeed (else SKIP,
#                                    with the tool's last line: the registry
#                                    is not reachable from here at all)
#   nonet --allow HOST --report      only the registry's host allowed: must
#                                    succeed; the report shows every name
#                                    looked up and every destination reached
#   nonet                            no --allow, as before issue 22: must
#                                    fail (with the tool's own retries)
#   nonet, retries off               must fail within 5 s
#   nonet --allow OTHER              only the other registry's host allowed
#                                    (retries off): must fail
#
# HOST is what the tool itself names: the host of `npm config get
# registry`, and for NuGet the host of each enabled source of `dotnet nuget
# list source` plus the hosts that its service index names for restore
# (PackageBaseAddress, RegistrationsBaseUrl).  A proxy in the environment
# (https_proxy, HTTPS_PROXY, all_proxy; npm's https-proxy) is what the tool
# then connects to, so its host is allowed too, and said.
#
# Each run is cut off after REGISTRY_TIMEOUT seconds (default 150).  Prints
# one table row per run and a PASS/FAIL/SKIP line per target.
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 NONET" >&2
	exit 2
fi
nonet=$1
timeout_s=${REGISTRY_TIMEOUT:-150}
work=$(mktemp -d "${TMPDIR:-/tmp}/nonet-registries.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

npm_package=express@4.21.2
nuget_package=Humanizer.Core
nuget_version=2.14.1

# The host (and port, when not the scheme's) of a URL; nothing for a bad one.
host_of() {
	python3 -c 'import sys, urllib.parse as u
try:
    p = u.urlsplit(sys.argv[1] if "://" in sys.argv[1] else "http://" + sys.argv[1])
    default = {"http": 80, "https": 443}.get(p.scheme)
    h = p.hostname or ""
    h = "[" + h + "]" if ":" in h else h
    print(h if p.port in (None, default) else f"{h}:{p.port}")
except ValueError:
    pass' "$1"
}

# Fresh caches and projects for every run: nothing comes from disk.  HOME
# (the tools' configuration and the .NET CLI's first-run state, no cache) is
# made once, outside, so that no run pays the CLI's first start.
fresh() {
	rm -rf "$work/cache" "$work/npm" "$work/restore"
	mkdir -p "$work/home" "$work/cache" "$work/npm" "$work/restore"
	# npm installs into the nearest package.json; not --prefix, which also
	# moves npm's global configuration ({prefix}/etc/npmrc, where this
	# machine's cafile is) away.
	echo '{ "name": "nonet-bench", "version": "1.0.0", "private": true }' >"$work/npm/package.json"
	cat >"$work/restore/restore.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageReference Include="$nuget_package" Version="$nuget_version" /></ItemGroup>
</Project>
EOF
}

# The environment of every run, outside nonet and in.  No MSBuild node or
# build server outlives a run.
tool_env() {
	env HOME="$work/home" DOTNET_CLI_HOME="$work/home" \
		npm_config_cache="$work/cache/npm" npm_config_update_notifier=false \
		npm_config_audit=false npm_config_fund=false \
		NUGET_PACKAGES="$work/cache/nuget" NUGET_HTTP_CACHE_PATH="$work/cache/nuget-http" \
		NUGET_PLUGINS_CACHE_PATH="$work/cache/nuget-plugins" \
		MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0 \
		DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
		DOTNET_GENERATE_ASPNET_CERTIFICATE=false "$@"
}

# A proxy the tools would use, from the environment.
proxy=""
for v in "${https_proxy:-}" "${HTTPS_PROXY:-}" "${all_proxy:-}" "${ALL_PROXY:-}"; do
	[ -n "$v" ] && proxy=$(host_of "$v") && break
done

fresh
npm_registry=$(cd "$work/npm" && tool_env npm config get registry 2>/dev/null)
npm_host=$(host_of "$npm_registry")
npm_proxy=$(cd "$work/npm" && tool_env npm config get https-proxy 2>/dev/null)
[ "$npm_proxy" = null ] && npm_proxy=""
[ -n "$npm_proxy" ] && npm_proxy=$(host_of "$npm_proxy")

nuget_sources=$(cd "$work/restore" && tool_env dotnet nuget list source --format short 2>/dev/null | awk '$1 == "E" { print $2 }')
nuget_hosts=""
nuget_index_note=""
for source in $nuget_sources; do
	nuget_hosts="$nuget_hosts $(host_of "$source")"
	# The service index (fetched outside, once) names where restore goes next.
	index_hosts=$(curl -fsS --max-time 30 "$source" 2>/dev/null | python3 -c 'import json, sys, urllib.parse as u
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for r in d.get("resources", []):
    t = r.get("@type", "")
    t = t if isinstance(t, str) else " ".join(t)
    if t.startswith(("PackageBaseAddress", "RegistrationsBaseUrl")):
        print(u.urlsplit(r.get("@id", "")).hostname or "")' | sort -u)
	nuget_index_note="$nuget_index_note $source: restore resources on $(echo "$index_hosts" | tr '\n' ' ')"
	nuget_hosts="$nuget_hosts $index_hosts"
done
nuget_hosts=$(echo "$nuget_hosts" | tr ' ' '\n' | sed '/^$/d' | sort -u | tr '\n' ' ')

echo "  npm registry:   $npm_registry (allowed: $npm_host)"
echo "  NuGet sources: $nuget_index_note"
echo "  NuGet allowed:  $nuget_hosts"
echo "  proxy:          ${proxy:-none in the environment}; npm https-proxy: ${npm_proxy:-none}"
echo "  as:             $(id -un) (uid $(id -u)); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
npm_allow="$npm_host $proxy $npm_proxy"
nuget_allow="$nuget_hosts $proxy"
echo

last_status=0
last_wall=0
last_line=""
run() { # LABEL CHECK-FILE TOOL...: one row; sets last_status, last_wall, last_line
	label=$1
	check=$2
	shift 2
	fresh
	start=$(date +%s.%N)
	out=$(cd "$work/npm" && tool_env timeout -k 5 "$timeout_s" "$@" 2>&1)
	last_status=$?
	end=$(date +%s.%N)
	last_wall=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
	# A run that exits 0 but did not fetch the package has not succeeded.
	[ "$last_status" -eq 0 ] && [ ! -e "$check" ] && last_status=99
	# The tool's last word: on a failure its last error line, without npm's
	# advice about proxies; the report's lines are shown apart.
	lines=$(printf '%s\n' "$out" | grep -v -e '^[[:space:]]*$' -e '^npm notice' -e 'complete log of this run' -e '^nonet:  ' \
		-e '^nonet: report' -e '^npm error network \(This is\|In most\|If you are\)' -e '^npm error network[[:space:]]*$')
	[ "$last_status" -ne 0 ] && printf '%s\n' "$lines" | grep -qi error && lines=$(printf '%s\n' "$lines" | grep -i error)
	last_line=$(printf '%s\n' "$lines" | tail -n 1 | sed 's/^[[:space:]]*//' | cut -c1-120)
	[ "$last_status" -eq 124 ] && last_line="(cut off after ${timeout_s} s) $last_line"
	[ "$last_status" -eq 99 ] && last_line="(exit 0, but $check is missing) $last_line"
	printf '| %s | %s | %s s | %s | %s |\n' "$tool" "$label" "$last_wall" "$last_status" "$last_line"
	# What --report saw: every name looked up, every destination reached.
	printf '%s\n' "$out" | grep -e '^nonet:   ' | sed 's/^nonet: */| | ↳ reported | | | /; s/[[:space:]]*$/ |/'
}

allow_args() { # HOST...: --allow HOST for each
	for h in "$@"; do printf ' --allow %s' "$h"; done
}

targets=""
target() { # PASS|FAIL|SKIP WHAT MEASURED
	targets="$targets$(printf '  %s  %-58s %s' "$1" "$2" "$3")
"
}

echo "| tool | run | wall | exit | last line |"
echo "|---|---|---|---|---|"

# One tool against the registries: the rows and targets of one section.
# NAME: how targets name the tool; WHERE: "registry" or "feed"; CHECK: the
# file a successful run fetched; ALLOWED: its own hosts; OTHER: the other
# registry's hosts, OTHER_LABEL how the row names them; CMD: the command;
# QUIET_LABEL and QUIET_CMD: the same with the tool's retries off; RETRIES:
# how the row without --allow names the tool's own retries.
registry_targets() {
	name=$1 where=$2 check=$3 allowed=$4 other=$5 other_label=$6 cmd=$7 quiet_label=$8 quiet_cmd=$9 retries=${10}
	pass_if() { if "$@"; then r=PASS; else r=FAIL; fi; }
	run "outside nonet" "$check" $cmd
	if [ -z "$allowed" ] || [ "$last_status" -ne 0 ]; then
		target SKIP "$name: only its $where allowed succeeds" "the $where is not reachable outside nonet either: $last_line"
		return
	fi
	# shellcheck disable=SC2046,SC2086 # one word per host and per argument
	run "--allow $(echo $allowed) --report" "$check" "$nonet" $(allow_args $allowed) --report -- $cmd
	pass_if [ "$last_status" -eq 0 ]
	target $r "$name: only its $where allowed succeeds" "exit $last_status, $last_wall s"
	run "no --allow" "$check" "$nonet" -- $cmd
	pass_if [ "$last_status" -ne 0 ]
	target $r "$name: without --allow fails, as before" "exit $last_status, $last_wall s ($retries)"
	run "no --allow, $quiet_label" "$check" "$nonet" -- $quiet_cmd
	pass_if awk "BEGIN { exit !($last_status != 0 && $last_wall < 5) }"
	target $r "$name: without --allow, $quiet_label, fails in < 5 s" "exit $last_status, $last_wall s"
	# shellcheck disable=SC2046,SC2086
	run "--allow ($other_label only), $quiet_label" "$check" "$nonet" $(allow_args $other) -- $quiet_cmd
	pass_if [ "$last_status" -ne 0 ]
	target $r "$name: another registry's host allowed fails" "exit $last_status, $last_wall s"
}

tool="npm install $npm_package"
npm_cmd="npm install --no-save $npm_package"
registry_targets npm registry "$work/npm/node_modules/express/package.json" "$(echo $npm_allow)" "$nuget_hosts" "NuGet's hosts" \
	"$npm_cmd" "retries off" "$npm_cmd --fetch-retries=0" "npm's own retries"

tool="dotnet restore ($nuget_package $nuget_version)"
restore_cmd="dotnet restore $work/restore"
registry_targets "dotnet restore" feed "$work/cache/nuget/$(echo "$nuget_package" | tr 'A-Z' 'a-z')/$nuget_version" "$(echo $nuget_allow)" "$npm_host" "npm's registry" \
	"$restore_cmd" "one try" "env NUGET_ENHANCED_MAX_NETWORK_TRY_COUNT=1 $restore_cmd" "NuGet's own retries"

echo
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s' "$targets"
