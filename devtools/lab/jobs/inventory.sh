# Main job: show the inventory of the iommu shape. The edus, one e1000 and
# the e1000e go to vfio-pci; the NIC behind the bridge stays on e1000, so
# the inventory shows its group-mate 0000:01:01.0 blocked by it. --regions
# opens each vfio-pci device to list its BARs and interrupts.
vfio_bind 0000:00:03.0
vfio_bind 0000:00:04.0
vfio_bind 0000:00:05.0
vfio_bind 0000:00:08.0
vfio_bind 0000:01:01.0
run vfiokit-info vfiokit-info --regions
