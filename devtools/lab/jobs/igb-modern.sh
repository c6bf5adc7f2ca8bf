# The igb poll-mode drivers on the modern shape (QEMU 11.1's 82576 PF at
# 0000:00:04.0), once per VFIO mode each device offers. Their peer is the
# e1000e at 0000:00:05.0 on the same hub, left on the kernel's e1000e
# driver: up and promiscuous (so the kernel's VLAN filter keeps no tagged
# test frame out), it counts and captures what they send and sends what
# they must receive.
#
# First the VF driver: the kernel's igb keeps the PF (up, so it answers the
# VF's mailbox) and makes one VF, which goes to vfio-pci. Then the PF
# driver: the VF is removed and the PF goes to vfio-pci.
export VFIOKIT_LAB_SHAPE=modern
igb=0000:00:04.0
peer=0000:00:05.0
# The address the kernel's igb driver reads, before vfio-pci takes the
# device: the test expects the same from vfiokit.
igb_if=$(ls /sys/bus/pci/devices/$igb/net 2>/dev/null)
VFIOKIT_IGB_KERNEL_MAC=$(cat "/sys/class/net/$igb_if/address" 2>/dev/null)
export VFIOKIT_IGB_KERNEL_MAC
peer_if=$(ls /sys/bus/pci/devices/$peer/net 2>/dev/null)
# The igb's QEMU hub port (lab.py), whose link the host takes down and up
# for the link-state interrupt test, through the action channel (fd 4).
export VFIOKIT_IGB_HUBPORT=hp0 VFIOKIT_ACTION_FD=4

peer_setup() {
    check "the kernel's igb had $igb ($igb_if, $VFIOKIT_IGB_KERNEL_MAC)" test -n "$VFIOKIT_IGB_KERNEL_MAC"
    check "the peer $peer has a kernel netdev ($peer_if)" test -n "$peer_if"
    check "peer up and promiscuous" ip link set "$peer_if" up promisc on
    check "peer carrier up" wait_for 20 carrier_is "$peer_if" 1
    checks_done
}

vf_setup() {
    check "PF $igb_if up on the kernel's igb" ip link set "$igb_if" up
    check "PF carrier up" wait_for 20 carrier_is "$igb_if" 1
    check "the kernel's igb makes one VF" sh -c "echo 1 > /sys/bus/pci/devices/$igb/sriov_numvfs"
    VFIOKIT_IGBVF=$(basename "$(readlink /sys/bus/pci/devices/$igb/virtfn0)" 2>/dev/null)
    export VFIOKIT_IGBVF
    check "VF $VFIOKIT_IGBVF is an 82576 VF" \
        test "$(cat /sys/bus/pci/devices/$VFIOKIT_IGBVF/device 2>/dev/null)" = 0x10ca
    checks_done
}

vf_teardown() {
    check "VF removed" sh -c "echo 0 > /sys/bus/pci/devices/$igb/sriov_numvfs"
    check "PF down" ip link set "$igb_if" down
    checks_done
}

run igb-setup peer_setup
run igbvf-setup vf_setup
vfio_bind "$VFIOKIT_IGBVF"
each_mode igbvf "$VFIOKIT_IGBVF" igbvf_lab_test --gtest_filter='Lab/*'
run igbvf-teardown vf_teardown
vfio_bind $igb
each_mode igb $igb igb_lab_test --gtest_filter='Lab/*'
