# vfiokit-info in the noiommu shape.
info_noiommu() {
    vfio_bind 0000:00:03.0 || return 1
    g=$(iommu_group 0000:00:03.0)
    vfiokit-info 0000:00:03.0 > /tmp/o
    cat /tmp/o
    check "no-IOMMU group shown" grep -q "iommu group  $g (vfio no-IOMMU): 0000:00:03.0" /tmp/o
    check "noiommu available" grep -q "noiommu  yes: /dev/vfio/noiommu-$g" /tmp/o
    check "group refused: no translation" grep -q "group    no: IOMMU group $g is a no-IOMMU group" /tmp/o
    check "cdev refused with the kernel's reason" grep -q "cdev     no: the kernel creates no device cdev for no-IOMMU devices" /tmp/o
    check "auto picks noiommu" grep -q "auto         noiommu" /tmp/o
    check "process mode noiommu" grep -q "^process mode: noiommu (auto:" /tmp/o
    vfiokit-info 0000:00:04.0 > /tmp/o
    cat /tmp/o
    check "unbound e1000: no group yet" grep -q "iommu group  none" /tmp/o
    checks_done
}
run info-noiommu info_noiommu
