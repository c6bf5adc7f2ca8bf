#!/bin/bash
# apt-fetch.sh SUITE PACKAGE DIR: download one binary package from another
# Debian suite (e.g. trixie-backports) into DIR and print the .deb's path,
# through a private apt state under the vfiokit cache. The host's own apt
# sources, lists and cache are never touched.
set -euo pipefail
suite=$1 pkg=$2 dir=$3
cache=${VFIOKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfiokit}
state=$cache/apt/$suite
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dir"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
    >"$state/sources.list"
opts=(-o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=/dev/null
      -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache"
      -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root -q)
# Lists older than a day are refreshed; a download failure names the suite.
if [[ -z $(find "$state/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null) ]]; then
    apt-get "${opts[@]}" update >&2 || { echo "apt-fetch: cannot read $suite's package lists" >&2; exit 1; }
fi
(cd "$dir" && apt-get "${opts[@]}" download "$pkg" >&2) \
    || { echo "apt-fetch: $pkg not downloadable from $suite" >&2; exit 1; }
ls -t "$dir"/"${pkg}"_*.deb | head -1
