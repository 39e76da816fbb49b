#!/bin/sh
# bench/offline-tools.sh NONET [NONET...]: real tools that look up names,
# run once outside nonet and once under each NONET given, as the user who
# runs this script (apt-get update only as root).  Prints one table row per
# tool and run: wall time, exit status and the tool's last line of output,
# so that the kind of error ("not found" or "try again") shows.
#
# Each run is cut off after OFFLINE_TIMEOUT seconds (default 120): before
# nonet answered lookups itself, some of these retried for minutes.
# Every tool gets a fresh, empty cache, so that nothing is served from disk.
set -u

timeout_s=${OFFLINE_TIMEOUT:-120}
work=$(mktemp -d "${TMPDIR:-/tmp}/nonet-offline.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

# A name that exists outside (this machine's Debian mirror and npm registry
# resolve to it), and one git URL on it.
name=deb.debian.org
url=https://deb.debian.org/debian/

# A .NET project with one package, restored without any cache.
mkdir -p "$work/restore"
cat >"$work/restore/restore.csproj" <<'EOF'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup><PackageReference Include="Humanizer.Core" Version="2.14.1" /></ItemGroup>
</Project>
EOF

run() { # LABEL WRAPPER TOOL...
	label=$1
	wrapper=$2
	shift 2
	tool=$1
	rm -rf "$work/cache" "$work/npm" "$work/pip" "$work/restore/obj"
	mkdir -p "$work/cache/lists/partial" "$work/npm" "$work/pip"
	start=$(date +%s.%N)
	# shellcheck disable=SC2086 # the wrapper is one word or none
	out=$(cd "$work" && HOME="$work/cache" npm_config_cache="$work/npm/cache" \
		NUGET_PACKAGES="$work/cache/nuget" NUGET_HTTP_CACHE_PATH="$work/cache/http" \
		DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
		timeout -k 5 "$timeout_s" $wrapper "$@" 2>&1)
	status=$?
	end=$(date +%s.%N)
	last=$(printf '%s\n' "$out" | grep -v -e '^[[:space:]]*$' -e '^npm notice' -e 'complete log of this run' | tail -n 1 | cut -c1-110)
	[ "$status" -eq 124 ] && last="(cut off after ${timeout_s} s) $last"
	printf '| %s | %s | %.1f s | %s | %s |\n' "$tool" "$label" "$(awk "BEGIN { print $end - $start }")" "$status" "$last"
}

tools() { # LABEL WRAPPER
	run "$1" "$2" getent hosts "$name"
	run "$1" "$2" python3 -c "import socket; socket.getaddrinfo('$name', 443)"
	run "$1" "$2" node -e "require('dns').lookup('$name', e => { if (e) { console.log(e.code); process.exit(1) } })"
	run "$1" "$2" curl -sS -o /dev/null "$url"
	run "$1" "$2" git ls-remote "$url"
	run "$1" "$2" npm view express version
	run "$1" "$2" npm install --prefix "$work/npm" express
	# npm retries every failed request, "not found" included, for about 70 s
	# (make-fetch-happen's fetch-retries=2 with 10 s and 60 s pauses).
	run "$1" "$2" npm view --fetch-retries=0 express version
	run "$1" "$2" pip download --no-cache-dir -d "$work/pip" requests
	run "$1" "$2" dotnet restore "$work/restore"
	if [ "$(id -u)" -eq 0 ]; then
		# apt's sandbox user (_apt) is not mapped inside nonet; see README.md.
		run "$1" "$2" apt-get update -o APT::Sandbox::User=root -o Dir::State::Lists="$work/cache/lists"
	fi
}

echo "| tool | where | wall | exit | last line |"
echo "|---|---|---|---|---|"
tools "outside nonet" ""
for nonet in "$@"; do
	tools "under $nonet" "$nonet"
done
