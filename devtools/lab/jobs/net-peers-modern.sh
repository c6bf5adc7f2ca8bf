# Packet I/O against peers that are not ours, on the modern shape (7.3
# pair): the guest kernel's pktgen, IPv4 stack (busybox ping) and NIC
# counters on the e1000e at 00:05.0 (hub 0) and the e1000 at 00:0b.0
# (hub 1), against a testpmd on the igb PF at 00:04.0 (hub 0, port 0) and
# the e1000 at 00:0a.0 (hub 1, port 1; the e1000e at 03:00.0 for DPDK's
# testpmd), through VFIO with a 48-bit IOMMU.
# First DPDK's testpmd, then vfiokit-testpmd in every VFIO mode the shape
# offers.
# DPDK's em driver reads an 82540EM's (e1000's) EEPROM bit by bit, about
# 20 s for each start under emulation (doc/lab.md), and two of its
# sessions start on B: DPDK's testpmd takes B on the e1000e at 03:00.0 instead
# (hotnic behind root port 00:0c.0, also on hub 1), vfiokit-testpmd the
# e1000 at 00:0a.0. Each B waits on vfio-pci, not enabled, while the other
# is in use.
dpdk_b=0000:03:00.0
dpdk_b_mac=$(net_mac $dpdk_b)
[ -n "$dpdk_b_mac" ] || echo "@@VFIOKIT:ERROR $dpdk_b has no kernel netdev: no MAC for DPDK's port B" >&3
vfio_bind $dpdk_b
run net-peers-setup net_peers_setup 0000:00:04.0 0000:00:05.0 0000:00:0a.0 0000:00:0b.0
(NP_B=$dpdk_b NP_B_MAC=$dpdk_b_mac; net_peers_dpdk "Type 1")
net_peers_vfiokit


# Then the guest's DPDK (lab.py --dpdk) forwards through VFIO group mode
# with the type1 IOMMU between the modern-only virtio-net with
# iommu_platform (00:06.0, net_virtio) and the e1000e (00:05.0, em), both on
# hub 0, as step dpdk-peer-VERSION-virtio; last, since two ports on one hub
# make a loop.
vfio_bind 0000:00:05.0
vfio_bind 0000:00:06.0
for v in $(dpdk_versions); do
    run "dpdk-peer-$v-virtio" dpdk_peer_step "$v" "Type 1" 0000:00:05.0 0000:00:06.0
done
# And vfiokit-testpmd the same way on the same two devices (em and the
# virtio-net PMD), once per VFIO mode the virtio-net is offered, as steps
# vfiokit-peer-virtio-MODE.
if command -v vfiokit-testpmd > /dev/null; then
    each_mode vfiokit-peer-virtio 0000:00:06.0 tp_forward_step vfiokit-testpmd 0000:00:05.0 0000:00:06.0
else
    skip vfiokit-peer-virtio "vfiokit-testpmd is not in this guest (lab.py --bin)"
fi
