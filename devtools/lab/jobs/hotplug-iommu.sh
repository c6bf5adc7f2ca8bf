# Host actions and hotplug on the iommu shape (both pairs, so QEMU 7.2 and
# 11.1, Linux 6.12 and 7.3): the guest asks the host to take a NIC's link
# down and up through QMP, and the host refuses what the lab does not
# allow; then, once per VFIO mode, the host adds an edu on the empty
# hotplug root port 00:0d.0 (QEMU id rp1) and removes it again while
# vfiokit (a primary and a secondary) uses it (hotplug_edu in guest-lib.sh,
# tests/lab/edu/hotplug_test.cpp). The e1000 at 00:06.0 is on hub port hp1
# (lab.py).
export VFIOKIT_LAB_SHAPE=iommu
rp=0000:00:0d.0

setup() {
    check "hotplug root port $rp (pcieport)" \
        test "$(basename "$(readlink /sys/bus/pci/devices/$rp/driver)")" = pcieport
    check "its slot is registered (pciehp)" test -e /sys/bus/pci/slots/1/address
    check "the edu kept by the test to vfio-pci" vfio_bind 0000:00:03.0
    checks_done
}

run actions-link link_follows_host 0000:00:06.0 hp1
run actions-refused host_refuses
run hotplug-setup setup
each_mode hotplug 0000:00:03.0 hotplug_edu $rp rp1 0000:00:03.0
