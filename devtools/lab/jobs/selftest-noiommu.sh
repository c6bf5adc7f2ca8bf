# The noiommu shape is what it claims: no IOMMU, unsafe no-IOMMU mode on,
# /dev/vfio/noiommu-N for a bound device; and a device cdev exactly where the
# kernel has cdev no-IOMMU (CONFIG_IOMMUFD_NOIOMMU, Linux 7.3:
# /dev/vfio/devices/noiommu-vfioN; before it, none).

noiommu_nodes() {
    check "no IOMMU registered" test -z "$(ls /sys/class/iommu 2>/dev/null)"
    check "no-IOMMU mode enabled" grep -qx Y /sys/module/vfio/parameters/enable_unsafe_noiommu_mode
    check "256 hugepages reserved" grep -q "HugePages_Total: *256$" /proc/meminfo
    check "edu has no IOMMU group before binding" test ! -e /sys/bus/pci/devices/0000:00:03.0/iommu_group
    cdev_noiommu=no
    zcat /proc/config.gz | grep -qx CONFIG_IOMMUFD_NOIOMMU=y && cdev_noiommu=yes
    echo "kernel has cdev no-IOMMU (CONFIG_IOMMUFD_NOIOMMU): $cdev_noiommu"
    for bdf in 0000:00:03.0 0000:00:04.0; do
        vfio_bind $bdf || { echo "not ok - bind $bdf"; CHECK_FAILED=$((CHECK_FAILED + 1)); continue; }
        g=$(iommu_group $bdf)
        check "$bdf has a vfio no-IOMMU group ($g)" grep -qx vfio-noiommu /sys/kernel/iommu_groups/$g/name
        check "$bdf node /dev/vfio/noiommu-$g" test -c /dev/vfio/noiommu-$g
        check "$bdf has no plain group node" test ! -e /dev/vfio/$g
        n=$(ls /sys/bus/pci/devices/$bdf/vfio-dev 2>/dev/null)
        if [ $cdev_noiommu = yes ]; then
            check "$bdf has a no-IOMMU cdev ($n)" sh -c "case '$n' in noiommu-vfio*) test -c /dev/vfio/devices/$n ;; *) false ;; esac"
        else
            check "$bdf has no device cdev (no CONFIG_IOMMUFD_NOIOMMU)" test ! -e "/dev/vfio/devices/$n"
        fi
    done
    check "no translated device cdev (/dev/vfio/devices/vfioN)" test -z "$(ls /dev/vfio/devices 2>/dev/null | grep -v '^noiommu-vfio')"
    checks_done
}

run lab-kernel-options check_kernel_options
run lab-noiommu-nodes noiommu_nodes
