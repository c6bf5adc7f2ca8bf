# vfiokit-info in the noiommu shape.
info_noiommu() {
    vfio_bind 0000:00:03.0 || return 1
    g=$(iommu_group 0000:00:03.0)
    vfiokit-info 0000:00:03.0 > /tmp/o
    cat /tmp/o
    check "no-IOMMU group shown" grep -q "iommu group  $g (vfio no-IOMMU): 0000:00:03.0" /tmp/o
    check "noiommu available" grep -q "noiommu  yes: /dev/vfio/noiommu-$g" /tmp/o
    check "group refused: no translation" grep -q "group    no: IOMMU group $g is a no-IOMMU group" /tmp/o
    # cdev no-IOMMU (CONFIG_IOMMUFD_NOIOMMU, Linux 7.3) names the device's
    # cdev noiommu-vfioN; vfiokit lists it as offered but not implemented.
    n=$(ls /sys/bus/pci/devices/0000:00:03.0/vfio-dev 2>/dev/null)
    if zcat /proc/config.gz | grep -qx CONFIG_IOMMUFD_NOIOMMU=y; then
        check "cdev refused: the device's cdev $n is cdev-noiommu's" grep -q "cdev     no: no IOMMU translates this device: its cdev /dev/vfio/devices/$n belongs to cdev-noiommu mode" /tmp/o
        check "cdev-noiommu offered, not implemented" grep -q "cdev-noiommu no: cdev no-IOMMU (iommufd noiommu, /dev/vfio/devices/$n) is offered by this kernel but not implemented by vfiokit yet" /tmp/o
    else
        check "cdev refused with the kernel's reason" grep -q "cdev     no: the kernel creates no device cdev for no-IOMMU devices" /tmp/o
        check "cdev-noiommu refused with the kernel's reason" grep -q "cdev-noiommu no: the kernel creates no device cdev for no-IOMMU devices" /tmp/o
    fi
    vfiokit-info --modes 0000:00:03.0 > /tmp/m
    cat /tmp/m
    check "--modes lists cdev-noiommu, not usable" grep -q "^mode cdev-noiommu cdev-noiommu auto no " /tmp/m
    check "auto picks noiommu" grep -q "auto         noiommu" /tmp/o
    check "process mode noiommu" grep -q "^process mode: noiommu (auto:" /tmp/o
    vfiokit-info 0000:00:04.0 > /tmp/o
    cat /tmp/o
    check "unbound e1000: no group yet" grep -q "iommu group  none" /tmp/o
    checks_done
}
run info-noiommu info_noiommu
