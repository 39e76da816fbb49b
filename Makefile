# nonet: build, test, install and package.
#
#   make              build build/nonet (NativeAOT host) and build/nonet-launcher (static)
#   make static       only the static launcher
#   make test         build, then run every test (unit and end-to-end)
#   make install      PREFIX=/usr/local for root, ~/.local otherwise; DESTDIR honoured
#   make clean

VERSION    := $(shell cat VERSION)
PREFIX     ?= $(if $(filter 0,$(shell id -u)),/usr/local,$(HOME)/.local)
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
DESTDIR    ?=

BUILD      := build
DOTNET     ?= dotnet
# A tool for "does it phone home?" builds without the .NET CLI's telemetry
# and its first-run banner.
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
# Without the SDK, one line saying what is missing and how to get it, as
# 'make deb' does for its tools (README.md, Set-up, has the details).
DOTNET_CHECK = @command -v $(DOTNET) >/dev/null 2>&1 || { echo "make needs the .NET 10 SDK ($(DOTNET) not found): sudo apt-get install dotnet-sdk-10.0 (Ubuntu 24.04 and later; Debian: add Microsoft's repository first, see README.md)" >&2; exit 1; }
ARCH       := $(shell uname -m)
RID        ?= $(if $(filter aarch64 arm64,$(ARCH)),linux-arm64,linux-x64)

# The launcher is static: musl where available (small, no glibc static-link
# caveats), else the system compiler.
MUSL_GCC   := $(shell command -v musl-gcc 2>/dev/null)
LAUNCHER_CC ?= $(if $(MUSL_GCC),$(MUSL_GCC),$(CC))
WARNINGS   := -Wall -Wextra -Werror -Werror=format=2 -Wshadow -Wmissing-prototypes -Wstrict-prototypes
LAUNCHER_CFLAGS ?= -std=c11 -O2 -g0 -Wl,--build-id $(WARNINGS) -DNONET_VERSION='"$(VERSION)"'
SANITIZE_CFLAGS := -std=c11 -O1 -g $(WARNINGS) -fsanitize=address,undefined -fno-omit-frame-pointer -DNONET_VERSION='"$(VERSION)"'

HOST_SOURCES := $(shell find Nonet.Host \( -name '*.cs' -o -name '*.c' \) -not -path '*/obj/*' -not -path '*/bin/*') \
                Nonet.Host/Nonet.Host.csproj Nonet.Host/startup.order Directory.Build.props VERSION

.PHONY: all static host test test-deps install uninstall clean
.DELETE_ON_ERROR:

all: $(BUILD)/nonet $(BUILD)/nonet-launcher

static: $(BUILD)/nonet-launcher

host: $(BUILD)/nonet

LAUNCHER_SOURCES := $(wildcard launcher/*.c)
LAUNCHER_HEADERS := $(wildcard launcher/*.h)

$(BUILD)/nonet-launcher: $(LAUNCHER_SOURCES) $(LAUNCHER_HEADERS) VERSION
	@mkdir -p $(BUILD)
	$(LAUNCHER_CC) $(LAUNCHER_CFLAGS) -static -o $@ $(LAUNCHER_SOURCES)

# The same launcher under AddressSanitizer and UBSan, for the test run.
$(BUILD)/nonet-launcher-sanitized: $(LAUNCHER_SOURCES) $(LAUNCHER_HEADERS) VERSION
	@mkdir -p $(BUILD)
	$(CC) $(SANITIZE_CFLAGS) -o $@ $(LAUNCHER_SOURCES)

$(BUILD)/nonet: $(HOST_SOURCES)
	$(DOTNET_CHECK)
	@mkdir -p $(BUILD)
	$(DOTNET) publish Nonet.Host/Nonet.Host.csproj -c Release -r $(RID) -o $(BUILD)/publish --nologo -v quiet
	cp $(BUILD)/publish/nonet $@

# What the end-to-end tests run besides nonet.  As root, make test installs
# what is missing (Debian/Ubuntu); otherwise it says what to install.
# useradd only as root, which runs the tests a second time as an account it
# creates (an ordinary user's PATH has no /usr/sbin).
TEST_COMMANDS := /usr/bin/python3:python3 tmux:tmux bwrap:bubblewrap ip:iproute2 setpriv:util-linux unshare:util-linux less:less \
                 node:nodejs curl:curl git:git dig:dnsutils ping:iputils-ping script:bsdutils strace:strace zsh:zsh fish:fish \
                 $(if $(filter 0,$(shell id -u)),useradd:passwd)

test-deps:
	@missing=""; for pair in $(TEST_COMMANDS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "the tests need:$$missing (sudo apt-get install$$missing)" >&2; exit 1; fi; fi

test: all $(BUILD)/nonet-launcher-sanitized test-deps
	$(DOTNET_CHECK)
	$(DOTNET) test Nonet.Tests/Nonet.Tests.csproj -c Release --nologo -v quiet --logger "console;verbosity=minimal"

# The man page names the paths of this install wherever it names the
# program or the launcher (doc/nonet.1 has the packages' /usr ones); only
# APPARMOR keeps the package's launcher, the one its profile attaches to.
# roff wants '-' as '\-'.
man_path = $(subst -,\\-,$(1))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/nonet
	install -m 0755 $(BUILD)/nonet $(DESTDIR)$(BINDIR)/nonet
	install -m 0755 $(BUILD)/nonet-launcher $(DESTDIR)$(LIBEXECDIR)/nonet/nonet-launcher
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	sed -e '/^\.SH APPARMOR/,/^\.SH /!{' \
	    -e 's|/usr/bin/nonet|$(call man_path,$(BINDIR))/nonet|g' \
	    -e 's|/usr/libexec/nonet/nonet\\-launcher|$(call man_path,$(LIBEXECDIR))/nonet/nonet\\-launcher|g' \
	    -e '}' doc/nonet.1 > $(DESTDIR)$(MANDIR)/man1/nonet.1
	chmod 0644 $(DESTDIR)$(MANDIR)/man1/nonet.1
	install -m 0644 completions/nonet.bash $(DESTDIR)$(BASHCOMPDIR)/nonet
	install -m 0644 completions/_nonet $(DESTDIR)$(ZSHCOMPDIR)/_nonet
	install -m 0644 completions/nonet.fish $(DESTDIR)$(FISHCOMPDIR)/nonet.fish
	@case "$(abspath $(LIBEXECDIR))" in "$(abspath $(BINDIR)/../libexec)") ;; \
	  *) echo "note: nonet looks for its launcher in BINDIR/../libexec/nonet;" \
	          "set 'launcher = $(LIBEXECDIR)/nonet/nonet-launcher' in /etc/nonet/config" ;; esac
	@if [ -z "$(DESTDIR)" ]; then case ":$$PATH:" in *":$(BINDIR):"*|*":$(BINDIR)/:"*) ;; \
	  *) echo "note: $(BINDIR) is not on your PATH; add it, e.g. export PATH=\"$(BINDIR):\$$PATH\" in your shell's profile" ;; esac; fi
	@# zsh -f: the fpath zsh starts with, before any rc file adds to it.
	@if [ -z "$(DESTDIR)" ] && command -v zsh >/dev/null 2>&1 && \
	  ! zsh -fc 'for d in $$fpath; do [[ $$d -ef $$1 ]] && exit 0; done; exit 1' zsh "$(ZSHCOMPDIR)"; then \
	  echo "note: zsh does not look in $(ZSHCOMPDIR) by default; for nonet's completion add 'fpath=($(ZSHCOMPDIR) \$$fpath)' to ~/.zshrc, before compinit"; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nonet $(DESTDIR)$(LIBEXECDIR)/nonet/nonet-launcher
	rm -f $(DESTDIR)$(MANDIR)/man1/nonet.1 $(DESTDIR)$(BASHCOMPDIR)/nonet \
	      $(DESTDIR)$(ZSHCOMPDIR)/_nonet $(DESTDIR)$(FISHCOMPDIR)/nonet.fish
	-rmdir $(DESTDIR)$(LIBEXECDIR)/nonet 2>/dev/null

clean:
	rm -rf $(BUILD) Nonet.Host/bin Nonet.Host/obj Nonet.Tests/bin Nonet.Tests/obj

include packaging/packaging.mk
include bench/bench.mk
