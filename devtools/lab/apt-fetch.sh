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
# Lists older than a day are refreshed; without the network, a package
# already fetched is used as it is.
if [[ -z $(find "$state/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null) ]]; then
    if ! apt-get "${opts[@]}" update >&2; then
        have=$(ls -t "$dir"/"${pkg}"_*.deb 2>/dev/null | head -1 || true)
        [[ -n $have ]] || { echo "apt-fetch: cannot read $suite's package lists" >&2; exit 1; }
        echo "apt-fetch: cannot refresh $suite's package lists; using $have" >&2
        echo "$have"
        exit 0
    fi
fi
# The candidate's file name (an epoch's colon is %3a in it); fetched once.
# (`|| true`: under pipefail an empty answer must reach the check below,
# not end the script without a word.)
ver=$(apt-cache "${opts[@]}" show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -1 || true)
[[ -n $ver ]] || { echo "apt-fetch: $pkg not in $suite" >&2; exit 1; }
have=$(ls "$dir"/"${pkg}_${ver/:/%3a}"_*.deb 2>/dev/null | head -1 || true)
if [[ -z $have ]]; then
    (cd "$dir" && apt-get "${opts[@]}" download "$pkg=$ver" >&2) \
        || { echo "apt-fetch: $pkg $ver not downloadable from $suite" >&2; exit 1; }
    have=$(ls "$dir"/"${pkg}_${ver/:/%3a}"_*.deb 2>/dev/null | head -1 || true)
    [[ -n $have ]] || { echo "apt-fetch: downloaded $pkg $ver, but no such .deb is in $dir" >&2; exit 1; }
fi
echo "$have"
