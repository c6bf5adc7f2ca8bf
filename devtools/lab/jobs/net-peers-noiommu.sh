# Packet I/O against peers that are not ours, on the noiommu shape: the
# guest kernel's pktgen, IPv4 stack (busybox ping) and NIC counters on the
# e1000s at 00:04.0 (hub 0) and 00:07.0 (hub 1), against a testpmd on the
# e1000e at 00:05.0 (hub 0, port 0) and the e1000e at 00:06.0 (hub 1, port
# 1), through VFIO's unsafe no-IOMMU mode (the NICs DMA to physical
# addresses). First DPDK's testpmd, then vfiokit-testpmd in every VFIO
# mode the shape offers.
run net-peers-setup net_peers_setup 0000:00:05.0 0000:00:04.0 0000:00:06.0 0000:00:07.0
net_peers_dpdk "No-IOMMU"
net_peers_vfiokit

