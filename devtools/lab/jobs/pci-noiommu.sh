# PCI device layer on the noiommu shape: edu 0000:00:03.0 and e1000e
# 0000:00:05.0 (MSI-X) in no-IOMMU mode.
for bdf in 0000:00:03.0 0000:00:05.0; do
    vfio_bind $bdf
done
run pci-noiommu env VFIOKIT_VFIO_MODE=noiommu VFIOKIT_LAB_SHAPE=noiommu pci_lab_test
