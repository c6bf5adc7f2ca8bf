# edu driver and PCI bus on the noiommu shape, once per mode it offers: DMA
# to physical addresses of a hugetlbfs page, MSI/INTx. 0000:00:04.0 stays
# on e1000 (the bus's "not bound" case).
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode edu 0000:00:03.0 edu_lab_test --gtest_filter='Lab/*'
