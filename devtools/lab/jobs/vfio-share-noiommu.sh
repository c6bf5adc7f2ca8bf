# VFIO state shared with other processes on the noiommu shape: a secondary
# drives edu with the primary's fds, DMA to physical addresses of a hugetlb
# memfd the primary passes along; a custom container; from_external_fds.
vfio_bind 0000:00:03.0
t=vfio_share_lab_test
run vfio-share-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu $t --gtest_filter='Lab/*'
