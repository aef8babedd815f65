#!/usr/bin/env bash
# Unpack Debian's sendmail into a private prefix for tests/test_sendmail_real.py.
#
# sendmail-bin conflicts with the postfix package the other tests need, so it is never installed:
# its .debs are downloaded with apt-get and unpacked with dpkg-deb -x into $1
# (default /opt/mailhygiene-test/sendmail). The test runs that binary with its own config, queue
# and syslog socket inside a private mount namespace; nothing of the machine's mail setup is used.
# Its shared-library dependencies and m4 (to build the .cf) are installed by .ci/run.
set -euo pipefail
dest="${1:-/opt/mailhygiene-test/sendmail}"
if [ -x "$dest/usr/libexec/sendmail/sendmail" ] && [ -f "$dest/usr/share/sendmail/cf/m4/cf.m4" ]; then
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
( cd "$work" && apt-get download sendmail-bin sendmail-base sendmail-cf )
mkdir -p "$dest"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$dest"
done
echo "sendmail unpacked into $dest"
