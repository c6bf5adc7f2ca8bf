# em driver on the noiommu shape, once per mode it offers (DMA to physical
# addresses): both models on hub 0 (e1000 00:04.0, e1000e 00:05.0) and
# hub 1 (e1000e 00:06.0, e1000 00:07.0), each sending to the other model.
# The addresses the kernel's drivers read from each EEPROM are taken before
# the NICs go to vfio-pci: the driver must read the same.
export VFIOKIT_LAB_SHAPE=noiommu
ports=
for bdf in 0000:00:04.0 0000:00:05.0 0000:00:06.0 0000:00:07.0; do
    mac=$(cat /sys/bus/pci/devices/$bdf/net/*/address 2>/dev/null)
    [ -n "$mac" ] || echo "@@VFIOKIT:ERROR $bdf has no kernel netdev: no address to compare" >&3
    ports="$ports $bdf=$mac"
    vfio_bind $bdf
done
export VFIOKIT_EM_PORTS="$ports"
export VFIOKIT_EM_PAIRS="0000:00:04.0>0000:00:05.0 0000:00:05.0>0000:00:04.0 0000:00:07.0>0000:00:06.0"
# Each port's QEMU hub port (lab.py), whose link the host takes down and
# up for the link-state interrupt test, through the action channel (fd 4).
export VFIOKIT_EM_HUBPORTS="0000:00:04.0=hp0 0000:00:05.0=hp1 0000:00:06.0=hp2 0000:00:07.0=hp3"
export VFIOKIT_ACTION_FD=4
each_mode em 0000:00:04.0 em_lab_test --gtest_filter='Lab/*'
# Multi-process: a secondary polls the queue of 00:05.0 that the primary
# leaves it while the primary sends from 00:04.0, then sends back; 00:06.0
# is configured and not started (a secondary naming it is refused).
export VFIOKIT_MPNET=em VFIOKIT_MPNET_TX=0000:00:04.0 VFIOKIT_MPNET_RX=0000:00:05.0
export VFIOKIT_MPNET_IDLE=0000:00:06.0
each_mode em-mp 0000:00:04.0 mp_net_lab_test --gtest_filter='Lab/*'
# The virtio-net PMD on the modern-only virtio-net at 00:08.0 (hub 0, no
# IOMMU: it DMAs to physical addresses, the cloud-VM case), once per mode;
# its peer is the e1000e at 00:05.0, given back to the kernel's e1000e.
virtio_lab 0000:00:08.0 0000:00:05.0 e1000e hp4
