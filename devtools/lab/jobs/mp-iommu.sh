# Multi-process (a primary and its secondaries) on the iommu shape, once per
# mode it offers. The edu is bound for the secondary's DMA test.
# vfiokit-procinfo must be on PATH.
export VFIOKIT_LAB_SHAPE=iommu
vfio_bind 0000:00:03.0
each_mode mp 0000:00:03.0 mp_lab_test
# Every call of the channel and of a secondary's attach failed in turn. No
# VFIO in it: once per shape (the no-IOMMU shape attaches in pa mode).
run mp-fault mp_fault_test
