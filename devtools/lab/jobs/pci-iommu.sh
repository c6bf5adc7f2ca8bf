# PCI device layer (regions, config space, BARs, IRQs, reset) on the iommu
# shape, once per VFIO mode it offers: edu 0000:00:03.0 and e1000e
# 0000:00:08.0 (MSI-X).
export VFIOKIT_LAB_SHAPE=iommu
for bdf in 0000:00:03.0 0000:00:08.0; do
    vfio_bind $bdf
done
each_mode pci 0000:00:03.0 pci_lab_test
