# DPDK peers on the modern shape (7.3 pair): each DPDK in the guest
# (lab.py --dpdk) forwards through VFIO group mode with the type1 IOMMU
# (48 bits) between NICs on hub 0: the igb PF (00:04.0, net_e1000's igb
# driver) and the e1000e (00:05.0, em) as step dpdk-peer-VERSION, then the
# modern-only virtio-net with iommu_platform (00:06.0, net_virtio) and the
# e1000e as step dpdk-peer-VERSION-virtio.
for bdf in 0000:00:04.0 0000:00:05.0 0000:00:06.0; do
    vfio_bind $bdf
done
dpdk_peers "Type 1" 0000:00:04.0 0000:00:05.0
for v in $(dpdk_versions); do
    run "dpdk-peer-$v-virtio" dpdk_peer_step "$v" "Type 1" 0000:00:05.0 0000:00:06.0
done
