#!/bin/sh
# Installs the Debian packages that one part of the project needs (the list is mk/packages):
#   sh mk/deps.sh run        build the library and run the samples (make run)
#   sh mk/deps.sh check      ... and every test of make check
#   sh mk/deps.sh coverage   ... and make coverage
#   sh mk/deps.sh bench      build, and the peers make bench measures beside ours
# As root it calls apt-get itself (a container has no sudo); as a user, through sudo.
set -eu
group=${1:-run}
list="$(dirname "$0")/packages"
case $group in
run) groups="run" ;;
check) groups="run check" ;;
coverage) groups="run check coverage" ;;
bench) groups="run bench" ;;
*) echo "usage: sh mk/deps.sh run|check|coverage|bench" >&2; exit 2 ;;
esac
pkgs=$(for g in $groups; do sed -n "s/^$g: *//p" "$list"; done | tr -s ' \n' ' ')
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing ($group): $pkgs"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086 # the list is words
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
