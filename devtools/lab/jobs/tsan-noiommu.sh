# The EAL's concurrency model under ThreadSanitizer, no-IOMMU (IOVA = PA).
vfio_bind 0000:00:03.0
run tsan-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu concurrency_tsan_lab_test
