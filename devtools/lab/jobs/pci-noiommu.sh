# PCI device layer on the noiommu shape, once per VFIO mode it offers: edu
# 0000:00:03.0 and e1000e 0000:00:05.0 (MSI-X).
export VFIOKIT_LAB_SHAPE=noiommu
for bdf in 0000:00:03.0 0000:00:05.0; do
    vfio_bind $bdf
done
each_mode pci 0000:00:03.0 pci_lab_test

# vDPA needs an IOMMU: vfiokit-vdpa refuses the modern-only virtio-net at
# 00:08.0 in no-IOMMU mode, saying so (a few seconds).
run vdpa-noiommu vd_refuses_noiommu 0000:00:08.0
