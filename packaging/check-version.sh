#!/bin/sh
# The version is defined once, in VERSION.  The package changelogs and the
# man page carry it too, because they are written by hand; this fails the
# package build when one of them was not updated.
set -eu
cd "$(dirname "$0")/.."

version=$(cat VERSION)
status=0
check() { # what found
    if [ "$2" != "$version" ]; then
        echo "check-version: $1 says '$2' but VERSION says '$version'; update $1" >&2
        status=1
    fi
}

check packaging/deb/debian/changelog \
    "$(sed -n '1s/^nonet (\([^)]*\)).*/\1/p' packaging/deb/debian/changelog)"
check "packaging/rpm/nonet.spec (Version:)" \
    "$(sed -n 's/^Version:[[:space:]]*//p' packaging/rpm/nonet.spec)"
check "packaging/rpm/nonet.spec (%changelog)" \
    "$(sed -n '/^%changelog/,${/^\*/{s/.* - \([^ ]*\)-[^-]*$/\1/p;q}}' packaging/rpm/nonet.spec)"
check doc/nonet.1 \
    "$(sed -n 's/^\.TH NONET 1 [^ ]* "nonet \([^"]*\)".*/\1/p' doc/nonet.1)"
exit $status
