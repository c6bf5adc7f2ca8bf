# A secondary DMAs through the primary's edu, IOVA = PA.
vfio_bind 0000:00:03.0
run mp-device-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu mp_device_lab_test
