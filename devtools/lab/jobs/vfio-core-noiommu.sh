# VFIO core on the noiommu shape, once per mode the shape offers (each_mode;
# the others are reported skipped). 0000:00:04.0 stays on e1000.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
t=vfio_lab_test
each_mode vfio-core 0000:00:03.0 $t --gtest_filter='Lab/*'
run vfio-core-auto $t --gtest_filter='Lab/Core.ModeIsTheOneAskedFor/*'
run vfio-core-forced-and-busy $t --gtest_filter='ForcedMode.*:OtherMode.*'
