# EAL memory on the noiommu shape (IOVA = physical address), once per mode
# it offers.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode memory 0000:00:03.0 memory_lab_test
