# The host action channel (host_action, lab.py's actions.py): the guest asks
# the host to remove, add and unlink devices through QMP, and sees the
# result from inside. Devices and ids are the modern shape's (lab.py).

present() { test -e /sys/bus/pci/devices/$1; }
absent() { test ! -e /sys/bus/pci/devices/$1; }

unplug() {
    check "edu behind root port 00:08.0 present (01:00.0)" present 0000:01:00.0
    check "host removes it (device_del hotedu)" host_action device_del '{"id": "hotedu"}'
    check "the guest saw it go" wait_for 10 absent 0000:01:00.0
    checks_done
}

plug() {
    check "root port 00:09.0 is empty" absent 0000:02:00.0
    check "host adds an edu there (device_add)" \
        host_action device_add '{"driver": "edu", "id": "newedu", "bus": "rp2"}'
    check "the guest saw it come (02:00.0)" wait_for 30 present 0000:02:00.0
    check "it is an edu" test "$(cat /sys/bus/pci/devices/0000:02:00.0/device 2>/dev/null)" = 0x11e8
    checks_done
}

carrier() { test "$(cat /sys/class/net/$1/carrier 2>/dev/null)" = "$2"; }

link() {
    # The e1000e at 00:05.0 is on hub port hp1; its kernel driver reports
    # the link QEMU gives it.
    dev=$(ls /sys/bus/pci/devices/0000:00:05.0/net 2>/dev/null)
    check "e1000e has a netdev ($dev)" test -n "$dev"
    ip link set "$dev" up
    check "carrier up at first" wait_for 20 carrier "$dev" 1
    check "host takes the link down (set_link hp1 off)" host_action set_link '{"name": "hp1", "up": false}'
    check "carrier went down" wait_for 20 carrier "$dev" 0
    check "host brings it back" host_action set_link '{"name": "hp1", "up": true}'
    check "carrier came back" wait_for 20 carrier "$dev" 1
    checks_done
}

# refused_with TEXT VERB JSON: the host refuses the request, saying TEXT.
refused_with() {
    rw_text=$1
    shift
    rw_reply=$(host_action "$@") && return 1
    echo "$rw_reply"
    echo "$rw_reply" | grep -q "^RESULT error .*$rw_text"
}

refused() {
    # Only the lab's verbs pass; QMP's own errors come back as errors.
    check "a verb the lab does not allow is refused" refused_with "not one the lab allows" quit '{}'
    check "QMP's error for an unknown device comes back" \
        refused_with "DeviceNotFound" device_del '{"id": "nosuch"}'
    check "arguments that are not JSON are refused" refused_with "not JSON" set_link 'up'
    checks_done
}

run actions-unplug unplug
run actions-plug plug
run actions-link link
run actions-refused refused
