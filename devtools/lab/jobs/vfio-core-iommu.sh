# VFIO core (containers, devices, DMA) on the iommu shape, once per mode.
# 0000:00:06.0 stays on e1000: the "device bound to another driver" case.
for bdf in 0000:00:03.0 0000:00:04.0 0000:01:01.0 0000:01:02.0; do
    vfio_bind $bdf
done
t=vfio_lab_test
run vfio-core-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-core-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-core-group-type1 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v1 VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-core-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-core-auto env VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/Core.ModeIsTheOneAskedFor/*'
run vfio-core-forced-and-busy env VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='ForcedMode.*:OtherMode.*'
