# A NIC removed while it forwards (modern shape, 7.3 pair), once per VFIO
# mode: the e1000e behind hotplug root port 00:0c.0 (QEMU id hotnic, hub
# 1) forwards with the e1000 at 00:0a.0 (same hub) through vfiokit; the
# host unplugs it (device_del); hotplug_lab_test must notice the kernel's
# request, release the device and keep the other port going, and the
# host's device_del must return (QEMU's DEVICE_DELETED: the kernel could
# finish the removal). Then, when the test asks, the host plugs it back
# (device_add, same netdev): the test sees it come, probes it and forwards
# on the new port. It stays on vfio-pci for the next mode.
export VFIOKIT_LAB_SHAPE=modern
rp=0000:00:0c.0
peer=0000:00:0a.0
ready=/tmp/hotplug-ready
plug=/tmp/hotplug-plug
log=/tmp/hotplug.log

# The device behind the root port (its other children are port services,
# 0000:00:0c.0:pcieNNN).
nic_below() {
    basename "$(ls -d /sys/bus/pci/devices/$rp/0000:??:??.? 2>/dev/null | head -n 1)" 2>/dev/null
}
nic=$(nic_below)
present() { test -e /sys/bus/pci/devices/$1; }
absent() { test ! -e /sys/bus/pci/devices/$1; }

setup() {
    check "an e1000e behind root port 00:0c.0 ($nic)" \
        test "$(cat /sys/bus/pci/devices/$nic/device 2>/dev/null)" = 0x10d3
    check "hotplug slot 3 registered (root port 00:0c.0)" test -e /sys/bus/pci/slots/3/address
    check "$nic to vfio-pci" vfio_bind "$nic"
    check "the peer $peer to vfio-pci" vfio_bind "$peer"
    checks_done
}

# One mode: forward, unplug, check, plug back. Output of the test and of
# the kernel goes into the step's output.
unplug_while_forwarding() {
    vfio_bind "$nic" || return 1
    rm -f $ready $plug
    dmesg -c > /dev/null 2>&1
    VFIOKIT_HOTPLUG_NIC=$nic VFIOKIT_HOTPLUG_PEER=$peer VFIOKIT_HOTPLUG_READY=$ready \
        VFIOKIT_HOTPLUG_PLUG=$plug hotplug_lab_test --gtest_filter='Lab/*' > $log 2>&1 &
    pid=$!
    # The bound for a test that never sees its events.
    (sleep 180; kill -9 $pid 2>/dev/null) &
    killer=$!
    t1= reply=
    wait_for 120 file_or_ended $ready $pid
    check "forwarding started" test -e $ready
    if [ -e $ready ]; then
        read -r t0 _ < /proc/uptime
        reply=$(host_action device_del '{"id": "hotnic"}')
        ok=$?
        read -r t1 _ < /proc/uptime
        echo "$reply"
        check "host removed $nic (device_del hotnic answered after DEVICE_DELETED)" test $ok -eq 0
        wait_for 60 file_or_ended $plug $pid
    fi
    if [ -e $plug ]; then
        check "the guest saw it go" absent "$nic"
        check "host plugs it back (device_add hotnic on rp3)" host_action device_add \
            '{"driver": "e1000e", "id": "hotnic", "bus": "rp3", "netdev": "hp5", "romfile": ""}'
    fi
    wait $pid
    rc=$?
    kill $killer 2>/dev/null
    cat $log
    check "hotplug_lab_test passed" test "$rc" -eq 0
    check "it named the device and the request" \
        grep -q "device $nic (pci, driver net_e1000_em): the kernel requests its removal" $log
    dmesg | grep -i "$nic" | grep -i "vfio\|request\|pciehp"
    check "vfio-pci relayed the request to the process" \
        sh -c "dmesg | grep -q '$nic: Relaying device request to user (#0)'"
    check "no repeated request (the first was answered)" \
        sh -c "! dmesg | grep -q '$nic: Relaying device request to user (#[1-9]'"
    check "no 'still in use' warning" sh -c "! dmesg | grep -q 'currently in use\|blocked until'"
    [ -n "$t1" ] && hotplug_timeline $log "$t0" "$t1" "$reply"
    # A failed run may leave the slot empty: plug the NIC back for the next
    # mode.
    if absent "$nic"; then
        host_action device_add \
            '{"driver": "e1000e", "id": "hotnic", "bus": "rp3", "netdev": "hp5", "romfile": ""}'
        wait_for 30 present "$nic"
    fi
    check "$nic is there for the next mode" wait_for 30 present "$nic"
    checks_done
}

run hotplug-setup setup
each_mode hotplug "$nic" unplug_while_forwarding
