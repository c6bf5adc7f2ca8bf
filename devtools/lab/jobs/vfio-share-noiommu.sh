# VFIO state shared with other processes on the noiommu shape, once per
# mode it offers: a secondary drives edu with the primary's fds, DMA to
# physical addresses of a hugetlb memfd the primary passes along; a custom
# container; from_external_fds and the broker's socket mode (no-IOMMU
# groups). Starting an unprivileged driver in no-IOMMU mode is refused with
# the reason.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode vfio-share 0000:00:03.0 vfio_share_lab_test --gtest_filter='Lab/*'
broker_noiommu_exec() {
    vfiokit-broker --vfio-mode noiommu --device 0000:00:03.0 -- true > /tmp/b 2>&1
    rc=$?
    cat /tmp/b
    check "refused" test "$rc" -ne 0
    check "says why" grep -q "CAP_SYS_RAWIO" /tmp/b
    checks_done
}
run vfio-share-broker-noiommu-exec-refused broker_noiommu_exec
