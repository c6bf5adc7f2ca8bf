# EAL memory on the iommu shape, once per mode.
vfio_bind 0000:00:03.0
t=memory_lab_test
run memory-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t
run memory-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t
run memory-group-type1 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v1 VFIOKIT_LAB_SHAPE=iommu $t
run memory-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t
