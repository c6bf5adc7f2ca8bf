# The primary SIGKILLed during a secondary's DMA through its edu (IOVA =
# PA), as in mp-crash-iommu.sh; once per mode the shape offers.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode mp-crash 0000:00:03.0 mp_crash_lab_test
