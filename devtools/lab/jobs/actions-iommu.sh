# The host action channel on the iommu shape (both pairs, so QEMU 7.2 and
# 11.1): the guest asks the host to take a NIC's link down and up through
# QMP, and the host refuses what the lab does not allow. The e1000 at
# 00:06.0 is on hub port hp1 (lab.py).
run actions-link link_follows_host 0000:00:06.0 hp1
run actions-refused host_refuses
