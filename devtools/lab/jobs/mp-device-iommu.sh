# A secondary DMAs through the primary's edus (default and custom
# container), once per mode the shape offers.
export VFIOKIT_LAB_SHAPE=iommu
vfio_bind 0000:00:03.0
vfio_bind 0000:00:04.0
each_mode mp-device 0000:00:03.0 mp_device_lab_test
