# Multi-process (a primary and its secondaries) on the iommu shape, once per
# mode. The edu is bound for the secondary's DMA test, which arrives with
# VFIO sharing (it skips until then). vfiokit-procinfo must be on PATH.
vfio_bind 0000:00:03.0
t=mp_lab_test
run mp-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t
run mp-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t
run mp-group-type1 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v1 VFIOKIT_LAB_SHAPE=iommu $t
run mp-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t
