# The iommu shape is what it claims: kernel options, VFIO nodes for bound
# devices, the shared group behind the bridge, hugepages.

bound_nodes() {
    for bdf in 0000:00:03.0 0000:00:04.0 0000:00:05.0 0000:01:01.0 0000:01:02.0; do
        vfio_bind $bdf || { echo "not ok - bind $bdf"; CHECK_FAILED=$((CHECK_FAILED + 1)); continue; }
        g=$(iommu_group $bdf)
        check "$bdf has an IOMMU group ($g)" test -n "$g"
        check "$bdf group node /dev/vfio/$g" test -c /dev/vfio/$g
        n=$(ls /sys/bus/pci/devices/$bdf/vfio-dev 2>/dev/null)
        check "$bdf vfio-dev entry ($n)" test -n "$n"
        check "$bdf cdev node /dev/vfio/devices/$n" test -c /dev/vfio/devices/$n
    done
    checks_done
}

shared_group() {
    a=$(iommu_group 0000:01:01.0)
    b=$(iommu_group 0000:01:02.0)
    br=$(iommu_group 0000:00:07.0)
    echo "groups: 01:01.0=$a 01:02.0=$b bridge=$br 00:03.0=$(iommu_group 0000:00:03.0) 00:04.0=$(iommu_group 0000:00:04.0)"
    check "edu and e1000 behind the bridge share one group" test "$a" = "$b"
    check "the bridge is in that group" test "$a" = "$br"
    check "the group has exactly three devices" test "$(ls /sys/kernel/iommu_groups/$a/devices | wc -l)" -eq 3
    check "root-bus edus have groups of their own" test "$(iommu_group 0000:00:03.0)" != "$(iommu_group 0000:00:04.0)"
    check "root-bus edu is alone in its group" test "$(ls /sys/kernel/iommu_groups/$(iommu_group 0000:00:03.0)/devices | wc -l)" -eq 1
    checks_done
}

devices_present() {
    for id in 00:03.0:0x1234:0x11e8 00:04.0:0x1234:0x11e8 00:05.0:0x8086:0x100e \
              00:06.0:0x8086:0x100e 01:01.0:0x1234:0x11e8 01:02.0:0x8086:0x100e; do
        bdf=0000:${id%%:0x*}
        ven=$(echo $id | cut -d: -f3)
        dev=$(echo $id | cut -d: -f4)
        check "$bdf is $ven:$dev" test "$(cat /sys/bus/pci/devices/$bdf/vendor):$(cat /sys/bus/pci/devices/$bdf/device)" = "$ven:$dev"
    done
    check "00:07.0 is a PCI-to-PCI bridge" grep -q 0x060400 /sys/bus/pci/devices/0000:00:07.0/class
    checks_done
}

run lab-kernel-options check_kernel_options
run lab-iommu-present iommu_present 704 39
run lab-devices devices_present
run lab-vfio-nodes bound_nodes
run lab-shared-group shared_group
