# Multi-process on the noiommu shape, once per mode it offers: IOVA =
# physical address, so each secondary reads its own pagemap and must find
# the primary's addresses.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode mp 0000:00:03.0 mp_lab_test
# Every call of the channel and of a secondary's attach failed in turn. No
# VFIO in it: once per shape (the no-IOMMU shape attaches in pa mode).
run mp-fault mp_fault_test
