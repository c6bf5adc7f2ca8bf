# edu driver and PCI bus (DMA, unmapped DMA, MSI/INTx, two edus in one
# container) on the iommu shape, once per mode it offers. 0000:01:02.0
# (e1000) shares the bridge's group with the edu at 0000:01:01.0, so it goes
# to vfio-pci too; 0000:00:06.0 stays on e1000: the "matching device on a
# kernel driver" case of the bus.
export VFIOKIT_LAB_SHAPE=iommu
for bdf in 0000:00:03.0 0000:00:04.0 0000:01:01.0 0000:01:02.0; do
    vfio_bind $bdf
done
each_mode edu 0000:00:03.0 edu_lab_test --gtest_filter='Lab/*'
