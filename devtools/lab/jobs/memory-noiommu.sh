# EAL memory on the noiommu shape (IOVA = physical address).
vfio_bind 0000:00:03.0
run memory-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu memory_lab_test
