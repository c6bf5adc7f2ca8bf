# DPDK peers on the noiommu shape: each DPDK in the guest (lab.py --dpdk)
# forwards between the e1000 (00:04.0) and the e1000e (00:05.0) on hub 0
# through VFIO's unsafe no-IOMMU mode (physical addresses), one step per
# version.
for bdf in 0000:00:04.0 0000:00:05.0; do
    vfio_bind $bdf
done
dpdk_peers "No-IOMMU" 0000:00:04.0 0000:00:05.0
