# Packet I/O against peers that are not ours, on the iommu shape: the
# guest kernel's pktgen, IPv4 stack (busybox ping) and NIC counters on the
# e1000s at 00:06.0 (hub 0) and 00:0b.0 (hub 1), against a testpmd on the
# e1000e at 00:08.0 (hub 0, port 0) and the e1000e at 00:0a.0 (hub 1, port
# 1). First DPDK's testpmd (the reference the checks are proven against),
# then vfiokit-testpmd in every VFIO mode the shape offers.
run net-peers-setup net_peers_setup 0000:00:08.0 0000:00:06.0 0000:00:0a.0 0000:00:0b.0
net_peers_dpdk "Type 1"
net_peers_vfiokit

# Then each DPDK in the guest (lab.py --dpdk) forwards between the e1000 at
# 00:05.0 and the e1000e at 00:08.0, both on hub 0, through VFIO group mode
# with the type1 IOMMU, one step per version; last, since these two ports
# on one hub make a loop that is still busy when testpmd stops.
# Not the second e1000 (00:06.0): DPDK's em driver reads an 82540's EEPROM
# bit by bit, which takes about 20 s per device under software emulation.
vfio_bind 0000:00:05.0
dpdk_peers "Type 1" 0000:00:05.0 0000:00:08.0
