#!/bin/sh
# /init of the lab guest. Mounts the pseudo filesystems, loads the helpers,
# runs /job.sh (written by the host for this boot), and powers off. Test
# output goes to the second serial port (/dev/ttyS1) so that kernel messages
# on the console (ttyS0) never interleave with it.
export PATH=/opt/vfiokit/bin:/bin:/sbin:/usr/bin:/usr/sbin
# Plain test output on the results port.
export GTEST_COLOR=no
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/hugepages /tmp /run
mount -t hugetlbfs nodev /dev/hugepages
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

exec 3>/dev/ttyS1
# The host action channel (host_action in lib.sh): raw, both ways.
stty -F /dev/ttyS2 raw -echo 2>/dev/null
exec 4<>/dev/ttyS2
. /lab/lib.sh
. /lab/net.sh
echo "@@VFIOKIT:BOOTED $(uname -r)" >&3
# What the host asked every program to see (lab.py --env), e.g. a sanitizer's
# options.
. /lab/env
. /lab/job.sh
echo "@@VFIOKIT:DONE" >&3
sync
poweroff -f
