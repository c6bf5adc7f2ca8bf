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

# vfiokit-devbind on the igb (info-iommu.sh does the e1000s): away from
# the kernel's igb to vfio-pci and back, and refused while its interface
# has a route.
drv_of() { basename "$(readlink /sys/bus/pci/devices/$1/driver 2>/dev/null)" 2>/dev/null; }
devbind_igb() {
    vfiokit-devbind -b vfio-pci $igb > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "$igb to vfio-pci, exit 0" test $rc -eq 0 -a "$(drv_of $igb)" = vfio-pci
    check "says what it did" grep -q "^$igb: bound to vfio-pci (was igb)$" /tmp/b
    vfiokit-devbind -b igb $igb > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "back on the kernel's igb, exit 0" test $rc -eq 0 -a "$(drv_of $igb)" = igb
    db_if=$(ls /sys/bus/pci/devices/$igb/net 2>/dev/null)
    check "the kernel made its netdev again ($db_if, same MAC)" \
        test -n "$db_if" -a "$(cat /sys/class/net/$db_if/address 2>/dev/null)" = "$VFIOKIT_IGB_KERNEL_MAC"
    check "$db_if up with 10.78.0.1/24 (a connected route)" \
        sh -c "ip addr add 10.78.0.1/24 dev $db_if && ip link set $db_if up"
    vfiokit-devbind -b vfio-pci $igb > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "refused: exit 1, names $db_if and --force" \
        sh -c "test $rc -eq 1 && grep -q 'bind $igb: refused: its interface $db_if has [0-9]* active route(s).*give --force' /tmp/b"
    check "still on igb" test "$(drv_of $igb)" = igb
    check "route removed, $db_if down" sh -c "ip addr flush dev $db_if && ip link set $db_if down"
    checks_done
}

run igb-setup peer_setup
run igbvf-setup vf_setup
vfio_bind "$VFIOKIT_IGBVF"
each_mode igbvf "$VFIOKIT_IGBVF" igbvf_lab_test --gtest_filter='Lab/*'
run igbvf-teardown vf_teardown
run devbind-igb devbind_igb
vfio_bind $igb
each_mode igb $igb igb_lab_test --gtest_filter='Lab/*'
# Multi-process (DPDK's symmetric_mp): two RSS queues, the primary polls
# queue 0 and a secondary queue 1 while the peer sends many flows.
export VFIOKIT_MPNET=igb VFIOKIT_MPNET_IGB=$igb VFIOKIT_MPNET_PEER=$peer
each_mode igb-mp $igb mp_net_lab_test --gtest_filter='Lab/*'

# vfiokit-testpmd as DPDK's multi-process testpmd: a primary forwards
# (rxonly) queue 0 of the igb's two RSS queues and a secondary queue 1;
# the kernel's pktgen on the peer sends a counted stream over 64 UDP source
# ports. The per-queue counts sum to what pktgen sent, each > 0.
mp_stream_rx() {  # LOG QUEUE: RX-packets of the stream of port 0, QUEUE
    awk -v q="$2" '/Forward Stats for RX Port= 0\/Queue=/ { split($0, a, "Queue="); cur = a[2] + 0; want = (cur == q); next }
        want && /RX-packets:/ { print $2; exit }' "$1"
}
testpmd_mp() {
    mp_n=300
    mp_args="--rxq=2 --txq=2 --rxd=256 --txd=256 --num-procs=2 --forward-mode=rxonly"
    rm -f /tmp/mp1.in /tmp/mp2.in && mkfifo /tmp/mp1.in /tmp/mp2.in
    # shellcheck disable=SC2086
    vfiokit-testpmd --proc-type=primary --file-prefix tpmp -l 0-1 -a $igb -- \
        -i $mp_args --proc-id=0 < /tmp/mp1.in > /tmp/mp1.log 2>&1 &
    mp_p=$!
    exec 7> /tmp/mp1.in
    check "primary: prompt" dpdk_prompts $mp_p /tmp/mp1.log 1
    echo start >&7
    check "primary: forwarding queue 0" dpdk_prompts $mp_p /tmp/mp1.log 2
    # shellcheck disable=SC2086
    vfiokit-testpmd --proc-type=secondary --file-prefix tpmp --lcores 2@0,3@1 -a $igb -- \
        $mp_args --proc-id=1 < /tmp/mp2.in > /tmp/mp2.log 2>&1 &
    mp_s=$!
    exec 8> /tmp/mp2.in
    check "secondary: forwarding queue 1" wait_for 60 grep -q "Press enter to exit" /tmp/mp2.log
    check "pktgen ready" pktgen_reset
    check "pktgen: $mp_n frames to $VFIOKIT_IGB_KERNEL_MAC" \
        pktgen_add "$peer_if" $mp_n "$VFIOKIT_IGB_KERNEL_MAC" 198.18.0.2
    for mp_c in "udp_src_min 1000" "udp_src_max 1063"; do
        echo "$mp_c" > "/proc/net/pktgen/$peer_if"
    done
    pktgen_run
    mp_sent=$(pktgen_sent "$peer_if")
    sleep 3
    echo >&8
    exec 8>&-
    wait $mp_s
    mp_src=$?
    echo stop >&7
    dpdk_prompts $mp_p /tmp/mp1.log 3
    echo quit >&7
    exec 7>&-
    wait $mp_p
    mp_prc=$?
    echo "--- primary"; cat /tmp/mp1.log; echo "--- secondary"; cat /tmp/mp2.log
    mp_q0=$(mp_stream_rx /tmp/mp1.log 0)
    mp_q1=$(mp_stream_rx /tmp/mp2.log 1)
    echo "pktgen sent $mp_sent; primary queue 0: ${mp_q0:-?}; secondary queue 1: ${mp_q1:-?}"
    check "pktgen sent $mp_n" test "$mp_sent" = $mp_n
    check "queue 0 (primary) got some" test "${mp_q0:-0}" -gt 0
    check "queue 1 (secondary) got some" test "${mp_q1:-0}" -gt 0
    check "queues 0 + 1 = $mp_sent" test $(( ${mp_q0:-0} + ${mp_q1:-0} )) -eq "$mp_sent"
    check "secondary exited 0" test $mp_src = 0
    check "primary exited 0" test $mp_prc = 0
    check "primary: every mbuf back (no pool error)" sh -c '! grep -q "still out" /tmp/mp1.log'
    checks_done
}
run igb-testpmd-mp testpmd_mp

# The virtio-net PMD on the modern-only virtio-net at 00:06.0 (hub 0,
# iommu_platform=on behind the 48-bit IOMMU), once per mode; its peer is
# the same e1000e on the kernel's driver.
virtio_lab 0000:00:06.0 $peer e1000e hp2
