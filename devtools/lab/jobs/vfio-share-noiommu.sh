# VFIO state shared with other processes on the noiommu shape, once per
# mode it offers: a secondary drives edu with the primary's fds, DMA to
# physical addresses of a hugetlb memfd the primary passes along; a custom
# container; from_external_fds.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode vfio-share 0000:00:03.0 vfio_share_lab_test --gtest_filter='Lab/*'
