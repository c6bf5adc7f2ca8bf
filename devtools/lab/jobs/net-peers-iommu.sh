# Packet I/O against peers that are not ours, on the iommu shape: the
# guest kernel's pktgen, IPv4 stack (busybox ping) and NIC counters on the
# e1000s at 00:06.0 (hub 0) and 00:0b.0 (hub 1), against a testpmd on the
# e1000e at 00:08.0 (hub 0, port 0) and the e1000e at 00:0a.0 (hub 1, port
# 1). First DPDK's testpmd (the reference the checks are proven against),
# then vfiokit-testpmd in every VFIO mode the shape offers.
run net-peers-setup net_peers_setup 0000:00:08.0 0000:00:06.0 0000:00:0a.0 0000:00:0b.0
net_peers_dpdk "Type 1"
net_peers_vfiokit


# vDPA on this 39-bit IOMMU: vfiokit-vdpa takes the modern virtio-net with
# iommu_platform at 00:0c.0 (hub 1) but refuses a front end whose memory
# lies above 2^39, naming the width and the fix.
run vdpa-width vd_refuses_width 0000:00:0c.0
