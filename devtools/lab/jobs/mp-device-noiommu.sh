# A secondary DMAs through the primary's edu, IOVA = PA, once per mode the
# shape offers.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode mp-device 0000:00:03.0 mp_device_lab_test
