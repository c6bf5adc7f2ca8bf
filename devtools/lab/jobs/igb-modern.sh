# The igb poll-mode driver on the modern shape (QEMU 11.1's 82576 PF at
# 0000:00:04.0), once per VFIO mode it offers. Its peer is the e1000e at
# 0000:00:05.0 on the same hub, left on the kernel's e1000e driver: up and
# promiscuous (so the kernel's VLAN filter keeps no tagged test frame out),
# it counts and captures what the igb sends and sends what it must receive.
export VFIOKIT_LAB_SHAPE=modern
igb=0000:00:04.0
peer=0000:00:05.0
# The address the kernel's igb driver reads, before vfio-pci takes the
# device: the test expects the same from vfiokit.
igb_if=$(ls /sys/bus/pci/devices/$igb/net 2>/dev/null)
VFIOKIT_IGB_KERNEL_MAC=$(cat "/sys/class/net/$igb_if/address" 2>/dev/null)
export VFIOKIT_IGB_KERNEL_MAC
peer_if=$(ls /sys/bus/pci/devices/$peer/net 2>/dev/null)

igb_setup() {
    check "the kernel's igb had $igb ($igb_if, $VFIOKIT_IGB_KERNEL_MAC)" test -n "$VFIOKIT_IGB_KERNEL_MAC"
    check "the peer $peer has a kernel netdev ($peer_if)" test -n "$peer_if"
    check "peer up and promiscuous" ip link set "$peer_if" up promisc on
    check "peer carrier up" wait_for 20 carrier_is "$peer_if" 1
    checks_done
}

run igb-setup igb_setup
vfio_bind $igb
each_mode igb $igb igb_lab_test --gtest_filter='Lab/*'
