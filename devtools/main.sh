#!/bin/sh
# The main job: build vfiokit, show the device inventory and forward
# packets. With no VFIO hardware at hand this boots the lab's `iommu`
# machine (its own kernel, in QEMU), lists its devices in short form with
# vfiokit-info, and runs vfiokit-testpmd forwarding for a few seconds
# between NICs on two separate QEMU hubs, the guest kernel's pktgen on one
# hub sending to its NIC on the other; pass --host to inventory this
# machine instead.
set -eu
cd "$(dirname "$0")/.."
devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
# Only what the main job runs: the test binaries are test.sh's to build.
meson compile -C build vfiokit-info >/dev/null
if [ "${1:-}" = "--host" ]; then
    exec build/app/vfiokit-info
fi
meson compile -C build vfiokit-testpmd >/dev/null
devtools/lab/build-kernel.sh >/dev/null
exec python3 devtools/lab/lab.py --shape iommu --job devtools/lab/jobs/inventory.sh \
    --bin build/app/vfiokit-info --bin build/app/testpmd/vfiokit-testpmd --name inventory
