# Distribution packages, included by the top-level Makefile.
#
#   make deb            nonet_<version>_<arch>.deb, from packaging/deb/debian
#   make rpm            nonet-<version>-1.<arch>.rpm, from packaging/rpm/nonet.spec
#   make package-test   build both, lint them, install the .deb and try it
#                       (run as root; see packaging/test-packages.sh)
#
# Both packages are built from the programs 'make' built, laid out by
# 'make install DESTDIR=$(PKG_ROOT) PREFIX=/usr', so they hold the same
# files as an install.  Neither needs the network.

PKG_BUILD  := $(BUILD)/pkg
PKG_ROOT   := $(PKG_BUILD)/root
DEB_ARCH   := $(shell dpkg --print-architecture 2>/dev/null || echo unknown)
RPM_ARCH   := $(shell rpm --eval '%{_arch}' 2>/dev/null || uname -m)
DEB_FILE   := nonet_$(VERSION)_$(DEB_ARCH).deb
RPM_FILE   := nonet-$(VERSION)-1.$(RPM_ARCH).rpm
DEB_SRCDIR := $(PKG_BUILD)/deb/nonet-$(VERSION)
RPM_TOPDIR := $(PKG_BUILD)/rpm

# Package timestamps come from the changelog, so two builds of one
# version agree (dpkg-buildpackage sets this itself; rpmbuild reads it).
PKG_SOURCE_DATE_EPOCH := $(shell dpkg-parsechangelog -l packaging/deb/debian/changelog -STimestamp 2>/dev/null)

.PHONY: deb rpm deb-package rpm-package package-test package-version-check package-root deb-tools rpm-tools

# Each package needs its build tools; say which package to install, in one
# line, before anything is built.
deb-tools:
	@missing=""; command -v dh >/dev/null 2>&1 || missing="$$missing debhelper"; \
	command -v dpkg-buildpackage >/dev/null 2>&1 || missing="$$missing dpkg-dev"; \
	if [ -n "$$missing" ]; then echo "make deb needs:$$missing (sudo apt-get install$$missing)" >&2; exit 1; fi

rpm-tools:
	@command -v rpmbuild >/dev/null 2>&1 || \
	{ echo "make rpm needs: rpm, for rpmbuild (sudo apt-get install rpm, or dnf install rpm-build)" >&2; exit 1; }

package-version-check:
	packaging/check-version.sh

package-root: all package-version-check
	rm -rf $(PKG_ROOT)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(PKG_ROOT)) PREFIX=/usr
	install -D -m 0644 packaging/config $(PKG_ROOT)/etc/nonet/config

deb: deb-tools
	$(MAKE) --no-print-directory deb-package

deb-package: package-root
	rm -rf $(PKG_BUILD)/deb
	mkdir -p $(DEB_SRCDIR)
	cp -a packaging/deb/debian packaging/apparmor $(PKG_ROOT) README.md NEWS.md $(DEB_SRCDIR)/
	cd $(DEB_SRCDIR) && dpkg-buildpackage --build=binary --no-sign --no-check-builddeps
	cp $(PKG_BUILD)/deb/$(DEB_FILE) $(DEB_FILE)
	@echo "built $(DEB_FILE)"

rpm: rpm-tools
	$(MAKE) --no-print-directory rpm-package

rpm-package: package-root
	rm -rf $(RPM_TOPDIR)
	SOURCE_DATE_EPOCH=$(PKG_SOURCE_DATE_EPOCH) rpmbuild -bb packaging/rpm/nonet.spec \
	    --define '_topdir $(abspath $(RPM_TOPDIR))' \
	    --define 'nonet_root $(abspath $(PKG_ROOT))' \
	    --define 'nonet_srcdir $(CURDIR)' \
	    --define '_buildhost reproducible' \
	    --define 'use_source_date_epoch_as_buildtime 1' \
	    --define 'clamp_mtime_to_source_date_epoch 1'
	cp $(RPM_TOPDIR)/RPMS/$(RPM_ARCH)/$(RPM_FILE) $(RPM_FILE)
	@echo "built $(RPM_FILE)"

package-test:
	packaging/test-packages.sh
