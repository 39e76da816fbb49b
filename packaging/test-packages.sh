#!/bin/bash
# Package tests for nonet: 'make package-test'.  Run as root on a Debian 12
# (or later) machine; it installs and purges the nonet .deb.
#
# apt packages this needs (besides what 'make' itself needs):
#   debhelper dpkg-dev lintian rpm rpmlint cpio apparmor man-db groff-base
#   mandoc bash-completion zsh fish iproute2 util-linux passwd
#
# It builds the .deb and the .rpm (twice, to compare file lists), lints
# them, installs the .deb with apt-get and tries it as an unprivileged user
# (NONET_TEST_USER, created if missing), unpacks the .rpm into a scratch
# root and runs that, then removes and purges the .deb.  Every check below
# can fail; none passes by being skipped.  The last line is
# 'N passed, N failed'; the exit status is non-zero if any check failed.

set -u
cd "$(dirname "$0")/.."
top=$PWD
user=${NONET_TEST_USER:-nonettest}
version=$(cat VERSION)
passed=0
failed=0

scratch=$(mktemp -d /tmp/nonet-package-test.XXXXXX)
chmod 0755 "$scratch"
fake_abi=
trap 'rm -rf "$scratch"; [ -z "$fake_abi" ] || rm -f /etc/apparmor.d/abi/4.0' EXIT
log=$scratch/log

# check DESCRIPTION COMMAND...: run COMMAND, count it, show its output if it
# failed.
check() {
    local description=$1
    shift
    if "$@" >"$log" 2>&1; then
        echo "PASS  $description"
        passed=$((passed + 1))
    else
        echo "FAIL  $description"
        sed 's/^/      | /' "$log" | tail -n 40
        failed=$((failed + 1))
    fi
}

# as_user COMMAND...: run COMMAND as the unprivileged test user, with a
# clean environment of that user's, from a directory it can read.
as_user() {
    local home
    home=$(getent passwd "$user" | cut -d: -f6)
    (cd "$scratch" && setpriv --reuid="$user" --regid="$user" --init-groups -- \
        env -i HOME="$home" USER="$user" LOGNAME="$user" SHELL=/bin/sh \
        PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 "$@")
}

# File list of a .deb: path, type and mode of each entry, directories
# included, with no sizes or dates.
deb_list() { dpkg-deb --fsys-tarfile "$1" | tar -tvf - | awk '{print $1, $6}' | sed 's| \./| /|; s|/$||' | sort; }
rpm_list() { rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$1" | sort; }

# Files only: what each package ships apart from directories.
deb_files() { deb_list "$1" | awk '$1 !~ /^d/ {print $2}'; }
rpm_files() { rpm_list "$1" | awk '$1 !~ /^d/ {print $2}'; }

fails() { ! "$@"; }
same() { [ "$1" = "$2" ] || { echo "expected: $2"; echo "got:      $1"; return 1; }; }
contains() { grep -q -e "$2" <<<"$1" || { echo "no '$2' in:"; echo "$1"; return 1; }; }

# The checks run some of these in 'bash -c'.
export -f as_user deb_list deb_files fails same contains
export user scratch

if [ "$(id -u)" != 0 ]; then
    echo "package-test: run as root (it installs and purges the nonet package)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
if ! getent passwd "$user" >/dev/null; then
    useradd --create-home --shell /bin/sh "$user"
fi
# A nonet from an earlier run would hide what this install does.
if dpkg-query -W nonet >/dev/null 2>&1; then
    apt-get purge -y nonet >/dev/null 2>&1
fi

deb=nonet_${version}_$(dpkg --print-architecture).deb
rpm=nonet-${version}-1.$(rpm --eval '%{_arch}').rpm

echo "== build"
check "the package versions match VERSION ($version)" packaging/check-version.sh
check "make deb builds $deb, with no undefined substitution variable" bash -c '
    out=$(make deb 2>&1); rc=$?; echo "$out"
    [ $rc = 0 ] && ! grep -q "used, but is not defined" <<<"$out"'
check "make rpm builds $rpm" make rpm
deb_list "$deb" >"$scratch/deb.1"
rpm_list "$rpm" >"$scratch/rpm.1"
sha256sum "$deb" "$rpm" >"$scratch/sums.1"
check "make deb again" make deb
check "make rpm again" make rpm
check "a second .deb build has the same file list" diff -u "$scratch/deb.1" <(deb_list "$deb")
check "a second .rpm build has the same file list" diff -u "$scratch/rpm.1" <(rpm_list "$rpm")
# Identical bytes are the aim, but only the file list is promised: report.
if sha256sum --quiet -c "$scratch/sums.1" >/dev/null 2>&1; then
    echo "      (both builds are also bit-for-bit identical)"
fi
check "make install then make uninstall leaves no file behind" bash -c '
    d=$1/install && make --no-print-directory install DESTDIR=$d PREFIX=/usr >/dev/null &&
    test -s $d/usr/share/man/man1/nonet.1 && test -s $d/usr/share/bash-completion/completions/nonet &&
    test -s $d/usr/share/zsh/site-functions/_nonet && test -s $d/usr/share/fish/vendor_completions.d/nonet.fish &&
    make --no-print-directory uninstall DESTDIR=$d PREFIX=/usr >/dev/null &&
    left=$(find $d ! -type d) && { [ -z "$left" ] || { echo "left: $left"; false; }; }' _ "$scratch"

echo "== lint"
check "lintian reports no error or warning" lintian --fail-on error,warning --display-info "$deb"
check "rpmlint reports no error or warning" bash -c '
    out=$(rpmlint -c packaging/rpm/rpmlint.toml "$1" 2>&1); echo "$out"
    grep -q " 0 errors, 0 warnings" <<<"$out"' _ "$rpm"
check "the man page has no groff warnings" bash -c '
    out=$(groff -ww -z -man doc/nonet.1 2>&1) && [ -z "$out" ] || { echo "$out"; false; }'
check "the man page has no mandoc lint warnings" mandoc -T lint -W warning doc/nonet.1
check "the bash completion parses" bash -n completions/nonet.bash
check "the zsh completion parses" zsh -n completions/_nonet
check "the fish completion parses" fish --no-execute completions/nonet.fish
check "the maintainer scripts parse" bash -c 'for f in packaging/deb/debian/*.post*; do sh -n "$f" || exit 1; done'

echo "== AppArmor profile"
profile=packaging/apparmor/nonet
if [ -e /etc/apparmor.d/abi/4.0 ]; then
    check "apparmor_parser accepts the profile" apparmor_parser -Q -K "$profile"
else
    # This AppArmor predates the 'userns' rule, as on Debian 12: check the
    # rest of the profile, without the abi line and the rule only 4.0 has.
    check "apparmor_parser $(apparmor_parser --version | sed -n '1s/.* //p') accepts the profile without its AppArmor 4 rules" \
        bash -c 'sed -e "/^abi <abi\/4.0>,/d" -e "/^ *userns,/d" "$1" >"$2/profile-3" &&
                 apparmor_parser -Q -K "$2/profile-3"' _ "$profile" "$scratch"
    check "an older AppArmor rejects the full profile (so postinst must not install it)" \
        fails apparmor_parser -Q -K "$profile"
fi
check "the profile attaches to the installed launcher and grants userns" bash -c '
    grep -Eq "^profile nonet /usr/libexec/nonet/nonet-launcher flags=\(unconfined\) \{" "$1" &&
    grep -Eq "^  userns,$" "$1"' _ "$profile"

check "the .deb depends on no shared library (both programs are static)" bash -c '
    deps=$(dpkg-deb -f "$1" Depends); echo "Depends: $deps"
    ! grep -Eq "libc6|shlibs" <<<"$deps"' _ "$deb"
check "the .deb ships README.md and NEWS.md in /usr/share/doc/nonet" bash -c '
    files=$(deb_files "$1") &&
    contains "$files" "^/usr/share/doc/nonet/README.md\(.gz\)\?$" &&
    contains "$files" "^/usr/share/doc/nonet/NEWS.md\(.gz\)\?$"' _ "$deb"
check "the .rpm ships README.md and NEWS.md as documentation" bash -c '
    docs=$(rpm -qpd "$1") && contains "$docs" "^/usr/share/doc/nonet/README.md$" &&
    contains "$docs" "^/usr/share/doc/nonet/NEWS.md$"' _ "$rpm"

echo "== install the .deb"
check "apt-get install ./$deb" apt-get install -y "./$deb"
check "dpkg reports nonet $version installed" bash -c \
    '[ "$(dpkg-query -W -f="\${Status} \${Version}" nonet)" = "install ok installed $1" ]' _ "$version"
check "/etc/nonet/config is a conffile" bash -c 'dpkg-query -W -f="\${Conffiles}" nonet | grep -q "^ /etc/nonet/config "'
check "the installed files are the .deb's" bash -c '
    for f in $(dpkg-deb -c "$1" | awk "{print \$6}" | sed "s|^\./|/|"); do
        [ -e "$f" ] || { echo "missing $f"; exit 1; }; done' _ "$deb"
if [ -e /etc/apparmor.d/abi/4.0 ]; then
    check "postinst installed the AppArmor profile (abi 4.0 present)" \
        cmp /usr/share/nonet/apparmor/nonet /etc/apparmor.d/nonet
else
    check "postinst left /etc/apparmor.d alone (no abi 4.0)" test ! -e /etc/apparmor.d/nonet
fi

echo "== use it as $user"
check "nonet --version shows $version for nonet and its launcher" bash -c '
    out=$(as_user nonet --version) && echo "$out" &&
    grep -qx "nonet $1" <<<"$out" &&
    grep -q "^nonet-launcher $1 (/usr/libexec/nonet/nonet-launcher)$" <<<"$out"' _ "$version"
check "nonet --self-test passes as $user" as_user nonet --self-test
check "nonet ip -br a shows only lo" bash -c '
    out=$(as_user nonet ip -br a) && echo "$out" && [ "$(awk "{print \$1}" <<<"$out")" = lo ]'
check "nonet passes on the command's exit status" bash -c 'as_user nonet sh -c "exit 7"; [ $? = 7 ]'
check "man nonet renders without warnings" bash -c '
    out=$(as_user env MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings nonet 2>"$1/man.err") || exit 1
    [ ! -s "$1/man.err" ] || { cat "$1/man.err"; exit 1; }
    grep -q "^NONET(1)" <<<"$out" && grep -q "^EXIT STATUS" <<<"$out" && grep -q "^FILES" <<<"$out"' _ "$scratch"

# complete_bash [--full] WORD...: what the installed bash completion offers
# for the command line WORD... (the last word is the one being completed),
# without or with bash-completion's own functions loaded.
complete_bash() {
    local full=
    [ "$1" = --full ] && { full=1; shift; }
    as_user bash -c '
        [ -n "$1" ] && . /usr/share/bash-completion/bash_completion
        . /usr/share/bash-completion/completions/nonet
        shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _nonet; printf "%s\n" "${COMPREPLY[@]}"' _ "$full" "$@"
}
export -f complete_bash
check "bash completes --self-test from --self" bash -c 'same "$(complete_bash nonet --self)" --self-test'
check "bash completes the launcher's path after --launcher" bash -c '
    same "$(complete_bash nonet --launcher /usr/libexec/nonet/nonet-l)" /usr/libexec/nonet/nonet-launcher'
check "bash completes a command name after the options" bash -c 'contains "$(complete_bash nonet --json -- ech)" "^echo$"'
check "bash, with bash-completion, completes the wrapped command's options" bash -c '
    out=$(complete_bash --full nonet nonet --self) && contains "$out" "^--self-test$" &&
    out=$(complete_bash --full nonet ech) && contains "$out" "^echo$"'
check "bash does not offer nonet's options to the wrapped command" bash -c '
    out=$(complete_bash nonet ls --self); [ -z "$out" ] || { echo "$out"; false; }'
check "fish completes --self-test from the installed completion" bash -c '
    contains "$(as_user fish -c "complete -C\"nonet --self\"")" "^--self-test"'
check "fish completes the wrapped command's own options" bash -c '
    contains "$(as_user fish -c "complete -C\"nonet nonet --print-c\"")" "^--print-config"'
check "fish completes a command after --report-file FILE" bash -c '
    contains "$(as_user fish -c "complete -C\"nonet --report-file f.jsonl ech\"")" "^echo"'
check "zsh finds the installed completion in its fpath" bash -c '
    as_user zsh -f -c "autoload -Uz compinit && compinit -u -d /dev/null && [[ \${_comps[nonet]} = _nonet ]]"'

check "the user's edits to /etc/nonet/config survive a reinstall" bash -c '
    printf "shell = /bin/sh\n" >>/etc/nonet/config &&
    apt-get install -y --reinstall "./$1" >/dev/null 2>&1 &&
    grep -qx "shell = /bin/sh" /etc/nonet/config &&
    env -u SHELL nonet --print-config | grep -A1 "^# from /etc/nonet/config:" | grep -qx "shell = /bin/sh"' _ "$deb"

echo "== the .rpm"
deb_files "$deb" | grep -v -e '^/usr/share/doc/nonet/' -e '^/usr/share/nonet/apparmor/' -e '^/usr/share/lintian/' \
    | sed 's|^/usr/share/zsh/vendor-completions/|/usr/share/zsh/site-functions/|; s|/nonet\.1\.gz$|/nonet.1|' \
    | sort >"$scratch/deb.files"
rpm_files "$rpm" | grep -v -e '^/usr/share/licenses/nonet/' -e '^/usr/share/doc/nonet/' | sed 's|/nonet\.1\.gz$|/nonet.1|' | sort >"$scratch/rpm.files"
echo "      rpm contents:"; rpm_list "$rpm" | sed 's/^/      | /'
check "the .rpm holds the .deb's files (less AppArmor, docs and lintian overrides; zsh in site-functions)" \
    diff -u "$scratch/deb.files" "$scratch/rpm.files"
check "the .rpm marks /etc/nonet/config as a noreplace config file" bash -c '
    rpm -qp --qf "[%{FILEFLAGS:fflags} %{FILENAMES}\n]" "$1" | grep -qx "cn /etc/nonet/config"' _ "$rpm"
check "the .rpm has version $version" bash -c '[ "$(rpm -qp --qf "%{VERSION}" "$1")" = "$2" ]' _ "$rpm" "$version"
rpmroot=$scratch/rpmroot
mkdir -p "$rpmroot"
check "the .rpm unpacks (rpm2cpio | cpio)" bash -c 'cd "$1" && rpm2cpio "$2" | cpio -idm --quiet' _ "$rpmroot" "$top/$rpm"
chmod -R a+rX "$rpmroot"
check "the unpacked rpm's nonet --self-test passes as $user, with its own launcher" bash -c '
    out=$(as_user "$1/usr/bin/nonet" --self-test); rc=$?; echo "$out"
    [ $rc = 0 ] && grep -q "launcher found .*$1/usr/libexec/nonet/nonet-launcher" <<<"$out"' _ "$rpmroot"

echo "== remove and purge"
check "apt-get remove nonet" apt-get remove -y nonet
check "after remove only the conffile is left" bash -c '
    [ "$(dpkg-query -W -f="\${Status}" nonet)" = "deinstall ok config-files" ] || exit 1
    for f in $(deb_files "$1"); do
        [ "$f" = /etc/nonet/config ] && continue
        [ ! -e "$f" ] || { echo "left behind: $f"; exit 1; }
    done
    for d in /usr/libexec/nonet /usr/share/nonet /usr/share/doc/nonet /etc/apparmor.d/nonet; do
        [ ! -e "$d" ] || { echo "left behind: $d"; exit 1; }
    done
    test -f /etc/nonet/config' _ "$deb"
check "apt-get purge nonet" apt-get purge -y nonet
check "after purge nothing is left" bash -c '
    ! dpkg-query -W nonet 2>/dev/null || { dpkg-query -W -f="\${Status}\n" nonet; exit 1; }
    [ ! -e /etc/nonet ] || { echo "left behind: /etc/nonet"; exit 1; }'

# The AppArmor 4 path of the maintainer scripts (Ubuntu 24.04), on a host
# whose AppArmor is older: a stand-in abi/4.0 makes postinst install the
# profile (loading it, where AppArmor is enabled, fails with a warning
# only), and the file trigger on /etc/apparmor.d/abi follows AppArmor up
# and down.
if [ ! -e /etc/apparmor.d/abi/4.0 ] && [ -e /etc/apparmor.d/abi/3.0 ]; then
    echo "== AppArmor 4 path of the maintainer scripts (stand-in abi/4.0)"
    fake_abi=1
    cp /etc/apparmor.d/abi/3.0 /etc/apparmor.d/abi/4.0
    retrigger() { dpkg-trigger --no-await /etc/apparmor.d/abi && dpkg --triggers-only -a; }
    check "with abi 4.0, apt-get install puts the profile in /etc/apparmor.d" bash -c '
        apt-get install -y "./$1" && cmp /usr/share/nonet/apparmor/nonet /etc/apparmor.d/nonet' _ "$deb"
    check "when abi 4.0 goes away, the trigger takes the profile out" bash -c '
        rm /etc/apparmor.d/abi/4.0 && '"$(declare -f retrigger)"' && retrigger && test ! -e /etc/apparmor.d/nonet'
    cp /etc/apparmor.d/abi/3.0 /etc/apparmor.d/abi/4.0
    check "when abi 4.0 comes back, the trigger puts the profile back" bash -c \
        "$(declare -f retrigger)"' && retrigger && cmp /usr/share/nonet/apparmor/nonet /etc/apparmor.d/nonet'
    check "apt-get remove takes the profile out" bash -c 'apt-get remove -y nonet && test ! -e /etc/apparmor.d/nonet'
    apt-get purge -y nonet >/dev/null 2>&1
    rm -f /etc/apparmor.d/abi/4.0
    fake_abi=
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
