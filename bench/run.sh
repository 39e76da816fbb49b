#!/bin/sh
# bench/run.sh NONET LAUNCHER FLOOR HARNESS XFER: run the benchmark as an
# unprivileged user, which is how nonet is used (as root, user namespaces
# behave differently and bwrap would not need one).
#
# The binaries are copied to a fresh world-readable directory first: the
# build tree may sit where another user cannot reach it.  As root, the
# benchmark runs as $NONET_BENCH_USER (default nonetbench), created when
# missing.
set -eu

if [ $# -ne 5 ]; then
	echo "usage: $0 NONET LAUNCHER FLOOR HARNESS XFER" >&2
	exit 2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/nonet-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
# nonet finds its launcher beside itself.
cp "$1" "$dir/nonet"
cp "$2" "$dir/nonet-launcher"
cp "$3" "$dir/floor"
cp "$4" "$dir/harness"
cp "$5" "$dir/xfer"
chmod 755 "$dir" "$dir"/*
cd "$dir"

if [ "$(id -u)" -ne 0 ]; then
	"$dir/harness" "$dir/nonet" "$dir/floor" "$dir/xfer"
	exit 0
fi

user=${NONET_BENCH_USER:-nonetbench}
if ! id -u "$user" >/dev/null 2>&1; then
	echo "bench: creating the unprivileged user '$user'"
	useradd --create-home --shell /bin/sh "$user"
fi
home=$(getent passwd "$user" | cut -d: -f6)
# A clean environment, as a login would give: the caller's HOME and
# XDG_CONFIG_HOME would point nonet at root's configuration.
env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$home" USER="$user" LOGNAME="$user" SHELL=/bin/sh \
	${BENCH_ROUNDS:+BENCH_ROUNDS="$BENCH_ROUNDS"} \
	${BENCH_PIPE_ROUNDS:+BENCH_PIPE_ROUNDS="$BENCH_PIPE_ROUNDS"} \
	${BENCH_FWD_ROUNDS:+BENCH_FWD_ROUNDS="$BENCH_FWD_ROUNDS"} \
	${BENCH_FWD_MIB:+BENCH_FWD_MIB="$BENCH_FWD_MIB"} \
	${BENCH_ONLY:+BENCH_ONLY="$BENCH_ONLY"} \
	setpriv --reuid="$user" --regid="$user" --init-groups -- \
	"$dir/harness" "$dir/nonet" "$dir/floor" "$dir/xfer"
