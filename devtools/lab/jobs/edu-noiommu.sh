# edu driver and PCI bus on the noiommu shape, once per mode it offers: DMA
# to physical addresses of a hugetlbfs page, MSI/INTx. 0000:00:04.0 stays
# on e1000 (the bus's "not bound" case).
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode edu 0000:00:03.0 edu_lab_test --gtest_filter='Lab/*'
# Hotplug without an IOMMU (hotplug_edu in guest-lib.sh,
# tests/lab/edu/hotplug_test.cpp): the host adds an edu with the shape's
# 32-bit DMA mask on the empty hotplug root port 00:09.0 (QEMU id rp1) and
# removes it while a primary and a secondary use it, once per mode.
hotplug_setup() {
    check "hotplug root port 0000:00:09.0 (pcieport)" \
        test "$(basename "$(readlink /sys/bus/pci/devices/0000:00:09.0/driver)")" = pcieport
    check "its slot is registered (pciehp)" test -e /sys/bus/pci/slots/1/address
    checks_done
}
run hotplug-setup hotplug_setup
each_mode hotplug 0000:00:03.0 hotplug_edu 0000:00:09.0 rp1 0000:00:03.0 ', "dma_mask": 4294967295'
# The edu DMA example as a user builds it (out of tree against the
# installed libvfiokit.so.0, devtools/examples-build.sh), once per mode:
# physical addresses, under the shape's 32-bit mask.
each_mode example-edu-dma 0000:00:03.0 edu-dma-shared -a 0000:00:03.0,dma_mask=0xffffffff
