# The modern shape (QEMU 11.1 pair) is what it claims: kernel options, a
# 48-bit IOMMU, its devices where lab.py puts them, igb SR-IOV VFs that the
# guest can create, hotplug slots on the three root ports, an ivshmem
# memory BAR; and, riding along, the peer-to-peer DMA test.

# vendor:device of BDF, as 0xVVVV:0xDDDD.
pci_id() {
    echo "$(cat /sys/bus/pci/devices/$1/vendor):$(cat /sys/bus/pci/devices/$1/device)"
}

devices_present() {
    for id in 00:03.0=0x1234:0x11e8 00:04.0=0x8086:0x10c9 00:05.0=0x8086:0x10d3 \
              00:06.0=0x1af4:0x1041 00:07.0=0x1af4:0x1110; do
        bdf=0000:${id%%=*}
        check "$bdf is ${id#*=}" test "$(pci_id $bdf)" = "${id#*=}"
    done
    for rp in 08.0 09.0 0c.0; do
        check "00:$rp is a PCIe root port" grep -q 0x060400 /sys/bus/pci/devices/0000:00:$rp/class
    done
    # The hot-pluggable edu sits alone behind the first root port (its
    # other children are port services, 0000:00:08.0:pcieNNN).
    below=$(ls -d /sys/bus/pci/devices/0000:00:08.0/0000:??:??.? 2>/dev/null)
    check "one device behind root port 00:08.0" test "$(echo "$below" | grep -c .)" -eq 1
    check "it is an edu" test "$(pci_id "$(basename "$below")")" = 0x1234:0x11e8
    check "root port 00:09.0 is empty" test -z "$(ls -d /sys/bus/pci/devices/0000:00:09.0/0000:??:??.? 2>/dev/null)"
    # The third holds the e1000e the hotplug job unplugs while forwarding.
    below=$(ls -d /sys/bus/pci/devices/0000:00:0c.0/0000:??:??.? 2>/dev/null)
    check "one device behind root port 00:0c.0" test "$(echo "$below" | grep -c .)" -eq 1
    check "it is an e1000e" test "$(pci_id "$(basename "$below")")" = 0x8086:0x10d3
    checks_done
}

hotplug_slots() {
    # pciehp registers a slot per hotplug-capable root port (chassis/slot
    # numbers from lab.py).
    for s in 1 2 3; do
        check "hotplug slot $s registered" test -e /sys/bus/pci/slots/$s/address
    done
    echo "slots: $(for s in /sys/bus/pci/slots/*; do echo "$(basename $s)=$(cat $s/address)"; done)"
    checks_done
}

ivshmem_bar() {
    # resource line 3 is BAR 2: start end flags. Memory (0x200) and 1 MiB.
    set -- $(sed -n 3p /sys/bus/pci/devices/0000:00:07.0/resource)
    echo "ivshmem BAR 2: $1-$2 flags $3"
    check "BAR 2 is memory" test $(( $3 & 0x200 )) -ne 0
    check "BAR 2 is 1 MiB (the memory backend's size)" test $(( $2 - $1 + 1 )) -eq 1048576
    checks_done
}

sriov_vfs() {
    pf=/sys/bus/pci/devices/0000:00:04.0
    total=$(cat $pf/sriov_totalvfs 2>/dev/null)
    echo "igb PF 00:04.0: sriov_totalvfs=$total"
    check "the igb PF offers VFs" test "${total:-0}" -gt 0
    vfio_bind 0000:00:04.0 || { checks_done; return 1; }
    check "two VFs created on vfio-pci (enable_sriov)" sh -c "echo 2 > $pf/sriov_numvfs"
    for vf in $pf/virtfn0 $pf/virtfn1; do
        bdf=$(basename "$(readlink $vf)")
        check "VF $bdf is an 82576 VF" test "$(pci_id $bdf)" = 0x8086:0x10ca
        check "VF $bdf is on vfio-pci" test "$(basename "$(readlink /sys/bus/pci/devices/$bdf/driver)")" = vfio-pci
        check "VF $bdf has a device cdev" test -n "$(ls /sys/bus/pci/devices/$bdf/vfio-dev 2>/dev/null)"
        check "VF $bdf has its own IOMMU group" test "$(iommu_group $bdf)" != "$(iommu_group 0000:00:04.0)"
    done
    check "VFs removed" sh -c "echo 0 > $pf/sriov_numvfs"
    check "no VF remains" test ! -e $pf/virtfn0
    checks_done
}

run lab-kernel-options check_kernel_options
run lab-iommu-present iommu_present 512 48
run lab-devices devices_present
run lab-hotplug-slots hotplug_slots
run lab-ivshmem-bar ivshmem_bar
run lab-sriov-vfs sriov_vfs

# Peer-to-peer DMA into a BAR (tests/lab/edu/p2p_test.cpp): in cdev mode
# the edu copies into and out of the ivshmem's BAR 2 through a BAR mapping
# (Container::map_device_bar), then the ivshmem is released while mapped;
# the other modes refuse. Not a self-test: it rides in this guest to spare
# the suite a boot (about 10 s).
export VFIOKIT_LAB_SHAPE=modern
vfio_bind 0000:00:03.0
vfio_bind 0000:00:07.0
each_mode p2p 0000:00:07.0 p2p_lab_test --gtest_filter='Lab/*'
