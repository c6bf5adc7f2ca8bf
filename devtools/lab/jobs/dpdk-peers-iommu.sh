# DPDK peers on the iommu shape: each DPDK in the guest (lab.py --dpdk)
# forwards between the e1000 at 00:05.0 and the e1000e at 00:08.0, both on
# hub 0, through VFIO group mode with the type1 IOMMU, one step per version.
# Not the second e1000 (00:06.0): DPDK's em driver reads an 82540's EEPROM
# bit by bit, which takes about 20 s per device under software emulation.
for bdf in 0000:00:05.0 0000:00:08.0; do
    vfio_bind $bdf
done
dpdk_peers "Type 1" 0000:00:05.0 0000:00:08.0
