# DPDK peers on the iommu shape: each DPDK in the guest (lab.py --dpdk)
# forwards between the two e1000 on hub 0 (00:05.0, 00:06.0) through VFIO
# group mode with the type1 IOMMU, one step per version.
for bdf in 0000:00:05.0 0000:00:06.0; do
    vfio_bind $bdf
done
dpdk_peers "Type 1" 0000:00:05.0 0000:00:06.0
