# SPDX-License-Identifier: LGPL-2.1-or-later
# Installs what building and testing pam_lockbox needs on Debian 12 (as root). Sourced.

LB_BUILD_DEPS="build-essential autoconf automake libtool pkg-config libsystemd-dev libsqlite3-dev
libconfig-dev libpam0g-dev libpq-dev libaudit-dev libauparse-dev"
LB_TEST_DEPS="systemd util-linux passwd jq sqlite3 openssh-server openssh-client libpam-wrapper dbus-bin python3
libpamtest0-dev valgrind strace clang clang-tools cppcheck man-db groff-base bsdextrautils
debootstrap systemd-container dpkg-dev debhelper lintian bash-completion pkgconf at faketime
postgresql-15 postgresql-client-15 openssl iproute2 tmux sudo auditd"

lb_install_deps() {
        local missing="" p
        for p in $LB_BUILD_DEPS $LB_TEST_DEPS "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing="$missing $p"
        done
        [ -z "$missing" ] && return 0
        echo "Installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
