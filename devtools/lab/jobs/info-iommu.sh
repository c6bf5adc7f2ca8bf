# vfiokit-info against the iommu shape's ground truth (sysfs, /dev).

info_bound() {
    vfio_bind 0000:00:03.0 || return 1
    g=$(iommu_group 0000:00:03.0)
    n=$(ls /sys/bus/pci/devices/0000:00:03.0/vfio-dev)
    numa=$(cat /sys/bus/pci/devices/0000:00:03.0/numa_node)
    vfiokit-info 0000:00:03.0 > /tmp/o
    cat /tmp/o
    check "header line with ids, NUMA node ($numa) and driver" grep -q "^0000:00:03.0  1234:11e8  class 00ff00  numa $numa  driver vfio-pci" /tmp/o
    check "group number from sysfs ($g)" grep -q "iommu group  $g: 0000:00:03.0$" /tmp/o
    check "cdev node" grep -q "vfio cdev    /dev/vfio/devices/$n" /tmp/o
    check "cdev available" grep -q "cdev     yes: /dev/vfio/devices/$n" /tmp/o
    check "group available" grep -q "group    yes: /dev/vfio/$g" /tmp/o
    check "compat available" grep -q "compat   yes" /tmp/o
    check "noiommu unavailable with reason" grep -q "noiommu  no: an IOMMU translates this device (group $g)" /tmp/o
    check "cdev-noiommu unavailable with reason" grep -q "cdev-noiommu no: an IOMMU translates this device (group $g); cdev no-IOMMU is only for devices without one" /tmp/o
    check "auto picks cdev" grep -q "auto         cdev" /tmp/o
    checks_done
}

info_kernel_driver() {
    vfiokit-info 0000:00:06.0 > /tmp/o
    cat /tmp/o
    check "e1000 driver shown" grep -q "driver e1000$" /tmp/o
    check "group refused: wrong driver" grep -q "group    no: device has driver e1000, not vfio-pci" /tmp/o
    check "says how to bind" grep -q "to use       bind it to vfio-pci: echo vfio-pci > /sys/bus/pci/devices/0000:00:06.0/driver_override" /tmp/o
    check "auto none" grep -q "auto         none" /tmp/o
    checks_done
}

info_shared_group() {
    vfio_bind 0000:01:01.0 || return 1
    driver_bind 0000:01:02.0 e1000 || return 1
    g=$(iommu_group 0000:01:01.0)
    vfiokit-info 0000:01:01.0 > /tmp/o
    cat /tmp/o
    check "members listed with drivers" grep -q "iommu group  $g: 0000:00:07.0 (no driver), 0000:01:01.0, 0000:01:02.0 (e1000)" /tmp/o
    check "group not viable, names the blocker" grep -q "group    no: IOMMU group $g is not viable: 0000:01:02.0 is bound to e1000" /tmp/o
    check "cdev blocked too" grep -q "cdev     no: IOMMU group $g is not viable" /tmp/o
    check "says what to do" grep -q "to use       give the group-mates to vfio-pci too" /tmp/o
    vfio_bind 0000:01:02.0 || return 1
    vfiokit-info 0000:01:01.0 > /tmp/o
    cat /tmp/o
    check "viable once both are on vfio-pci" grep -q "group    yes: /dev/vfio/$g" /tmp/o
    checks_done
}

info_all() {
    vfiokit-info > /tmp/o
    total=$(ls /sys/bus/pci/devices | wc -l)
    check "lists all $total devices" grep -q "^$total PCI device(s)" /tmp/o
    check "process mode: auto picks cdev" grep -q "^process mode: cdev (auto: 0000:00:03.0 is bound to vfio-pci and offers cdev" /tmp/o
    vfiokit-info --vfio-mode=noiommu 0000:00:03.0 > /tmp/n
    check "forced noiommu: says what is missing" grep -q "^process mode: unavailable: VFIO mode noiommu unavailable: no-IOMMU mode is off" /tmp/n
    check "kernel line" grep -q "^kernel: /dev/vfio/vfio yes, /dev/iommu yes, no-IOMMU mode off, vfio-pci yes" /tmp/o
    vfiokit-info --json > /tmp/j
    check "json lists every device" test "$(grep -o '"address":"[0-9a-f:.]*","vendor"' /tmp/j | wc -l)" -eq "$total"
    check "bad address rejected" sh -c '! vfiokit-info 0000:00:1e.0'
    checks_done
}

# --regions opens each device bound to vfio-pci (auto mode: cdev here) and
# lists its regions and interrupts; others say why they were not opened.
info_regions() {
    vfio_bind 0000:00:08.0 || return 1
    vfiokit-info --regions 0000:00:03.0 0000:00:08.0 0000:00:06.0 > /tmp/o
    cat /tmp/o
    check "opened in the auto mode" grep -q "^  regions      opened in cdev mode" /tmp/o
    check "edu BAR0: 1 MiB, mappable" grep -q "^    BAR0     0x100000    1 MiB     rw  mmap$" /tmp/o
    check "e1000e I/O BAR, not mappable" grep -q "^    BAR2     0x20        32 B      rw  io-port, no mmap$" /tmp/o
    check "e1000e MSI-X BAR mappable" grep -q "^    BAR3     0x4000      16 KiB    rw  mmap, msix-mappable$" /tmp/o
    check "e1000e MSI-X with its 5 vectors" grep -q "^  irqs         INTx 1, MSI 1, MSI-X 5, ERR 1, REQ 1$" /tmp/o
    check "device on e1000: why not opened" grep -q "^  regions      not opened: bound to e1000, not vfio-pci$" /tmp/o
    # Busy: the group node held open keeps the device from its cdev.
    g=$(iommu_group 0000:00:03.0)
    exec 5<>/dev/vfio/$g
    vfiokit-info --regions 0000:00:03.0 > /tmp/b
    exec 5<&-
    cat /tmp/b
    check "busy device: the reason" grep -q "^  regions      not opened: .*Device or resource busy" /tmp/b
    vfiokit-info --json --regions 0000:00:08.0 > /tmp/j
    check "json: MSI-X vectors" grep -q '"type":"MSI-X","count":5' /tmp/j
    check "json: MSI-X BAR" grep -q '"name":"BAR3","size":16384,[^}]*"mappable":true,[^}]*"msix_mappable":true' /tmp/j
    checks_done
}

run info-bound-device info_bound
run info-kernel-driver info_kernel_driver
run info-shared-group info_shared_group
run info-all-devices info_all
run info-regions info_regions
