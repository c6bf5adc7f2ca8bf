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
    # cdev noiommu-vfioN; where the kernel has it, auto prefers it (the job
    # runs as root: CAP_SYS_RAWIO); before 7.3 the device gets no cdev.
    n=$(ls /sys/bus/pci/devices/0000:00:03.0/vfio-dev 2>/dev/null)
    if zcat /proc/config.gz | grep -qx CONFIG_IOMMUFD_NOIOMMU=y; then
        check "kernel line: no-IOMMU cdevs, CAP_SYS_RAWIO" grep -q "^no-IOMMU cdevs: yes (0000:00:03.0 has the no-IOMMU cdev $n); this process has CAP_SYS_RAWIO: yes" /tmp/o
        check "cdev refused: the device's cdev $n is cdev-noiommu's" grep -q "cdev     no: no IOMMU translates this device: its cdev /dev/vfio/devices/$n belongs to cdev-noiommu mode" /tmp/o
        check "cdev-noiommu available" grep -q "cdev-noiommu yes: /dev/vfio/devices/$n on /dev/iommu (needs CAP_SYS_RAWIO)" /tmp/o
        check "noiommu available too" grep -q "noiommu  yes: /dev/vfio/noiommu-$g" /tmp/o
        vfiokit-info --modes 0000:00:03.0 > /tmp/m
        cat /tmp/m
        check "--modes: cdev-noiommu usable" grep -q "^mode cdev-noiommu cdev-noiommu auto yes /dev/vfio/devices/$n" /tmp/m
        check "auto picks cdev-noiommu" grep -q "auto         cdev-noiommu (.*no IOMMU translates the device; its no-IOMMU cdev" /tmp/o
        check "process mode cdev-noiommu" grep -q "^process mode: cdev-noiommu (auto: 0000:00:03.0 is bound to vfio-pci and offers cdev-noiommu" /tmp/o
        # Without CAP_SYS_RAWIO: vfio_lab_test's Lab/Core.CdevNoiommuNeedsRawio.
    else
        check "kernel line: no no-IOMMU cdevs" grep -q "^no-IOMMU cdevs: no (no-IOMMU device 0000:00:03.0 is VFIO device $n, without a cdev)" /tmp/o
        check "cdev refused with the kernel's reason" grep -q "cdev     no: no IOMMU translates this device, and no-IOMMU devices get no cdev before Linux 7.3" /tmp/o
        check "cdev-noiommu refused with the kernel's reason" grep -q "cdev-noiommu no: no-IOMMU devices get no cdev before Linux 7.3" /tmp/o
        vfiokit-info --modes 0000:00:03.0 > /tmp/m
        cat /tmp/m
        check "--modes: cdev-noiommu not offered, with the reason" grep -q "^mode cdev-noiommu cdev-noiommu auto no no-IOMMU devices get no cdev before Linux 7.3" /tmp/m
        check "auto picks noiommu, saying why not cdev-noiommu" grep -q "auto         noiommu (.*cdev-noiommu unavailable (no-IOMMU devices get no cdev before Linux 7.3" /tmp/o
        check "process mode noiommu" grep -q "^process mode: noiommu (auto:" /tmp/o
        vfiokit-info --vfio-mode=cdev-noiommu 0000:00:03.0 > /tmp/f 2>&1
        check "forced cdev-noiommu: the 7.3 reason" grep -q "^process mode: unavailable: VFIO mode cdev-noiommu unavailable: no-IOMMU devices get no cdev before Linux 7.3" /tmp/f
    fi
    vfiokit-info 0000:00:04.0 > /tmp/o
    cat /tmp/o
    check "unbound e1000: no group yet" grep -q "iommu group  none" /tmp/o
    checks_done
}
run info-noiommu info_noiommu
