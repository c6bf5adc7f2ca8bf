# em driver on the iommu shape, once per mode it offers: both models on
# hub 0 (e1000 00:05.0 and 00:06.0, e1000e 00:08.0) and hub 1 (e1000e
# 00:0a.0, e1000 00:0b.0); 82540EM -> 82574L and 82574L -> 82540EM on
# hub 0, 82574L -> 82540EM on hub 1. The addresses
# the kernel's e1000/e1000e drivers read from each EEPROM are taken before
# the NICs go to vfio-pci: the driver must read the same. The bridge's
# e1000 (01:02.0) stays on e1000 with its group's edu: a group with a
# device on a kernel driver is not viable, so -a leaves it out.
export VFIOKIT_LAB_SHAPE=iommu
ports=
for bdf in 0000:00:05.0 0000:00:06.0 0000:00:08.0 0000:00:0a.0 0000:00:0b.0; do
    mac=$(cat /sys/bus/pci/devices/$bdf/net/*/address 2>/dev/null)
    [ -n "$mac" ] || echo "@@VFIOKIT:ERROR $bdf has no kernel netdev: no address to compare" >&3
    ports="$ports $bdf=$mac"
    vfio_bind $bdf
done
export VFIOKIT_EM_PORTS="$ports"
export VFIOKIT_EM_PAIRS="0000:00:05.0>0000:00:08.0 0000:00:08.0>0000:00:06.0 0000:00:0a.0>0000:00:0b.0"
# Each port's QEMU hub port (lab.py), whose link the host takes down and
# up for the link-state interrupt test, through the action channel (fd 4).
export VFIOKIT_EM_HUBPORTS="0000:00:05.0=hp0 0000:00:06.0=hp1 0000:00:08.0=hp3 0000:00:0a.0=hp4 0000:00:0b.0=hp5"
export VFIOKIT_ACTION_FD=4
each_mode em 0000:00:05.0 em_lab_test --gtest_filter='Lab/*'
# Multi-process: a secondary polls the queue of 00:08.0 that the primary
# leaves it while the primary sends from 00:05.0, then sends back; 00:0a.0
# is configured and not started (a secondary naming it is refused).
export VFIOKIT_MPNET=em VFIOKIT_MPNET_TX=0000:00:05.0 VFIOKIT_MPNET_RX=0000:00:08.0
export VFIOKIT_MPNET_IDLE=0000:00:0a.0
each_mode em-mp 0000:00:05.0 mp_net_lab_test --gtest_filter='Lab/*'
# The virtio-net PMD on the modern-only virtio-net at 00:0c.0 (hub 1,
# iommu_platform=on behind the 39-bit IOMMU), once per mode; its peer is
# the e1000 at 00:0b.0, given back to the kernel's e1000 driver.
virtio_lab 0000:00:0c.0 0000:00:0b.0 e1000 hp6
