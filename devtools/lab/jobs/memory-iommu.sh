# EAL memory on the iommu shape, once per mode it offers.
export VFIOKIT_LAB_SHAPE=iommu
vfio_bind 0000:00:03.0
each_mode memory 0000:00:03.0 memory_lab_test
