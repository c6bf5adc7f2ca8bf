#!/bin/sh
# The main job: build vfiokit and show the device inventory. With no VFIO
# hardware at hand this boots the lab's `iommu` machine (its own kernel, in
# QEMU) and runs vfiokit-info there; pass --host to inventory this machine.
set -eu
cd "$(dirname "$0")/.."
devtools/bootstrap.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
# Only what the main job runs: the test binaries are test.sh's to build.
meson compile -C build vfiokit-info >/dev/null
if [ "${1:-}" = "--host" ]; then
    exec build/app/vfiokit-info
fi
devtools/lab/build-kernel.sh >/dev/null
exec python3 devtools/lab/lab.py --shape iommu --job devtools/lab/jobs/inventory.sh \
    --bin build/app/vfiokit-info --name inventory
