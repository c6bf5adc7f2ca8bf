# VFIO core on the noiommu shape. 0000:00:04.0 stays on e1000.
vfio_bind 0000:00:03.0
t=vfio_lab_test
run vfio-core-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu $t --gtest_filter='Lab/*'
run vfio-core-auto env VFIOKIT_LAB_SHAPE=noiommu $t --gtest_filter='Lab/Core.ModeIsTheOneAskedFor/*'
run vfio-core-forced-and-busy env VFIOKIT_LAB_SHAPE=noiommu $t --gtest_filter='ForcedMode.*:OtherMode.*'
