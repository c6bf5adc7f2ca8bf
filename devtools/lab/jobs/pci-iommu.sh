# PCI device layer (regions, config space, BARs, IRQs, reset) on the iommu
# shape, once per VFIO mode: edu 0000:00:03.0 and e1000e 0000:00:08.0 (MSI-X).
for bdf in 0000:00:03.0 0000:00:08.0; do
    vfio_bind $bdf
done
t=pci_lab_test
run pci-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t
run pci-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t
run pci-group-type1 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v1 VFIOKIT_LAB_SHAPE=iommu $t
run pci-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t
