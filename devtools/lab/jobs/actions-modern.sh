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

run actions-unplug unplug
run actions-plug plug
# The e1000e at 00:05.0 is on hub port hp1.
run actions-link link_follows_host 0000:00:05.0 hp1
run actions-refused host_refuses
