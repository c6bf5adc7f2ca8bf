# VFIO core (containers, devices, DMA) on the iommu shape, once per mode the
# shape offers (each_mode; the others are reported skipped).
# 0000:00:06.0 stays on e1000: the "device bound to another driver" case.
export VFIOKIT_LAB_SHAPE=iommu
for bdf in 0000:00:03.0 0000:00:04.0 0000:01:01.0 0000:01:02.0; do
    vfio_bind $bdf
done
t=vfio_lab_test
each_mode vfio-core 0000:00:03.0 $t --gtest_filter='Lab/*'
run vfio-core-auto $t --gtest_filter='Lab/Core.ModeIsTheOneAskedFor/*'
run vfio-core-forced-and-busy $t --gtest_filter='ForcedMode.*:OtherMode.*'
