# edu driver and PCI bus on the noiommu shape: DMA to physical addresses of
# a hugetlbfs page, MSI/INTx. 0000:00:04.0 stays on e1000 (the bus's "not
# bound" case).
vfio_bind 0000:00:03.0
t=edu_lab_test
run edu-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu $t --gtest_filter='Lab/*'
