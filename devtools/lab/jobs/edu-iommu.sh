# edu driver and PCI bus (DMA, unmapped DMA, MSI/INTx, two edus in one
# container) on the iommu shape, once per mode. 0000:01:02.0 (e1000) shares
# the bridge's group with the edu at 0000:01:01.0, so it goes to vfio-pci
# too; 0000:00:06.0 stays on e1000: the "matching device on a kernel
# driver" case of the bus.
for bdf in 0000:00:03.0 0000:00:04.0 0000:01:01.0 0000:01:02.0; do
    vfio_bind $bdf
done
t=edu_lab_test
run edu-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run edu-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run edu-group-type1 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v1 VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run edu-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
