# Multi-process on the noiommu shape: IOVA = physical address, so each
# secondary reads its own pagemap and must find the primary's addresses.
vfio_bind 0000:00:03.0
run mp-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu mp_lab_test
