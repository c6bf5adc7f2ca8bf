# vfiokit-info against the iommu shape's ground truth (sysfs, /dev).

info_bound() {
    vfio_bind 0000:00:03.0 || return 1
    g=$(iommu_group 0000:00:03.0)
    n=$(ls /sys/bus/pci/devices/0000:00:03.0/vfio-dev)
    numa=$(cat /sys/bus/pci/devices/0000:00:03.0/numa_node)
    vfiokit-info 0000:00:03.0 > /tmp/o
    cat /tmp/o
    check "header line with ids, NUMA node ($numa) and driver" grep -q "^0000:00:03.0  1234:11e8  class 00ff00  numa $numa  driver vfio-pci" /tmp/o
    check "group number from sysfs ($g)" grep -q "iommu group  $g: 0000:00:03.0$" /tmp/o
    check "cdev node" grep -q "vfio cdev    /dev/vfio/devices/$n" /tmp/o
    check "cdev available" grep -q "cdev     yes: /dev/vfio/devices/$n" /tmp/o
    check "group available" grep -q "group    yes: /dev/vfio/$g" /tmp/o
    check "compat available" grep -q "compat   yes" /tmp/o
    check "noiommu unavailable with reason" grep -q "noiommu  no: an IOMMU translates this device (group $g)" /tmp/o
    check "cdev-noiommu unavailable with reason" grep -q "cdev-noiommu no: an IOMMU translates this device (group $g); cdev no-IOMMU is only for devices without one" /tmp/o
    check "auto picks cdev" grep -q "auto         cdev" /tmp/o
    checks_done
}

info_kernel_driver() {
    vfiokit-info 0000:00:06.0 > /tmp/o
    cat /tmp/o
    check "e1000 driver shown" grep -q "driver e1000$" /tmp/o
    check "group refused: wrong driver" grep -q "group    no: device has driver e1000, not vfio-pci" /tmp/o
    check "says how to bind" grep -q "to use       bind it to vfio-pci: echo vfio-pci > /sys/bus/pci/devices/0000:00:06.0/driver_override" /tmp/o
    check "auto none" grep -q "auto         none" /tmp/o
    checks_done
}

info_shared_group() {
    vfio_bind 0000:01:01.0 || return 1
    driver_bind 0000:01:02.0 e1000 || return 1
    g=$(iommu_group 0000:01:01.0)
    vfiokit-info 0000:01:01.0 > /tmp/o
    cat /tmp/o
    check "members listed with drivers" grep -q "iommu group  $g: 0000:00:07.0 (no driver), 0000:01:01.0, 0000:01:02.0 (e1000)" /tmp/o
    check "group not viable, names the blocker" grep -q "group    no: IOMMU group $g is not viable: 0000:01:02.0 is bound to e1000" /tmp/o
    check "cdev blocked too" grep -q "cdev     no: IOMMU group $g is not viable" /tmp/o
    check "says what to do" grep -q "to use       give the group-mates to vfio-pci too" /tmp/o
    vfio_bind 0000:01:02.0 || return 1
    vfiokit-info 0000:01:01.0 > /tmp/o
    cat /tmp/o
    check "viable once both are on vfio-pci" grep -q "group    yes: /dev/vfio/$g" /tmp/o
    checks_done
}

info_all() {
    vfiokit-info > /tmp/o
    total=$(ls /sys/bus/pci/devices | wc -l)
    check "lists all $total devices" grep -q "^$total PCI device(s)" /tmp/o
    check "process mode: auto picks cdev" grep -q "^process mode: cdev (auto: 0000:00:03.0 is bound to vfio-pci and offers cdev" /tmp/o
    vfiokit-info --vfio-mode=noiommu 0000:00:03.0 > /tmp/n
    check "forced noiommu: says what is missing" grep -q "^process mode: unavailable: VFIO mode noiommu unavailable: no-IOMMU mode is off" /tmp/n
    check "kernel line" grep -q "^kernel: /dev/vfio/vfio yes, /dev/iommu yes, no-IOMMU mode off, vfio-pci yes" /tmp/o
    vfiokit-info --json > /tmp/j
    check "json lists every device" test "$(grep -o '"address":"[0-9a-f:.]*","vendor"' /tmp/j | wc -l)" -eq "$total"
    check "bad address rejected" sh -c '! vfiokit-info 0000:00:1e.0'
    checks_done
}

# --regions opens each device bound to vfio-pci (auto mode: cdev here) and
# lists its regions and interrupts; others say why they were not opened.
info_regions() {
    vfio_bind 0000:00:08.0 || return 1
    vfiokit-info --regions 0000:00:03.0 0000:00:08.0 0000:00:06.0 > /tmp/o
    cat /tmp/o
    check "opened in the auto mode" grep -q "^  regions      opened in cdev mode" /tmp/o
    check "edu BAR0: 1 MiB, mappable" grep -q "^    BAR0     0x100000    1 MiB     rw  mmap$" /tmp/o
    check "e1000e I/O BAR, not mappable" grep -q "^    BAR2     0x20        32 B      rw  io-port, no mmap$" /tmp/o
    check "e1000e MSI-X BAR mappable" grep -q "^    BAR3     0x4000      16 KiB    rw  mmap, msix-mappable$" /tmp/o
    check "e1000e MSI-X with its 5 vectors" grep -q "^  irqs         INTx 1, MSI 1, MSI-X 5, ERR 1, REQ 1$" /tmp/o
    check "device on e1000: why not opened" grep -q "^  regions      not opened: bound to e1000, not vfio-pci$" /tmp/o
    # Busy: the group node held open keeps the device from its cdev.
    g=$(iommu_group 0000:00:03.0)
    exec 5<>/dev/vfio/$g
    vfiokit-info --regions 0000:00:03.0 > /tmp/b
    exec 5<&-
    cat /tmp/b
    check "busy device: the reason" grep -q "^  regions      not opened: .*Device or resource busy" /tmp/b
    vfiokit-info --json --regions 0000:00:08.0 > /tmp/j
    check "json: MSI-X vectors" grep -q '"type":"MSI-X","count":5' /tmp/j
    check "json: MSI-X BAR" grep -q '"name":"BAR3","size":16384,[^}]*"mappable":true,[^}]*"msix_mappable":true' /tmp/j
    checks_done
}

# vfiokit-devbind (DPDK's dpdk-devbind.py): --status against sysfs and
# against vfiokit-info's mode choice; e1000s moved to vfio-pci and back to
# the kernel's e1000; a NIC with a route refused without --force; a
# group-mate on e1000 named, and moved with --with-group.
# section_has TITLE REGEX: a line of --status's section TITLE (in /tmp/s)
# matches REGEX.
section_has() {
    awk -v t="$1" '$0 == t { on = 1; next } /^$/ { on = 0 } on' /tmp/s | grep -q "$2"
}
drv_of() { basename "$(readlink /sys/bus/pci/devices/$1/driver 2>/dev/null)" 2>/dev/null; }
nic=0000:00:06.0

devbind_status() {
    vfio_bind 0000:00:03.0 || return 1
    driver_bind $nic e1000 || return 1
    ifn=$(ls /sys/bus/pci/devices/$nic/net)
    g=$(iommu_group 0000:00:03.0)
    vfiokit-devbind --status > /tmp/s
    cat /tmp/s
    # driver_bind (guest-lib.sh) leaves its driver_override, which the line shows.
    check "e1000 $nic under network devices on a kernel driver, if=$ifn drv=e1000 override=e1000" \
        section_has "Network devices using a kernel driver" \
        "^$nic '8086:100e class 0200' if=$ifn drv=e1000 override=e1000 iommu_group=[0-9]* vfio=bind-first"
    auto=$(vfiokit-info 0000:00:03.0 | sed -n 's/^ *auto  *\([a-z-]*\).*/\1/p')
    check "vfiokit-info names the mode auto picks ($auto)" test -n "$auto"
    check "edu 0000:00:03.0 under other devices on vfio-pci, group $g, auto mode '$auto' as vfiokit-info says" \
        section_has "Other devices using vfio-pci" \
        "^0000:00:03.0 '1234:11e8 class 00ff' drv=vfio-pci override=vfio-pci iommu_group=$g vfio=.*$auto(auto)"
    nets=$(for d in /sys/bus/pci/devices/*; do case $(cat $d/class) in 0x02*) echo $d;; esac; done | wc -l)
    check "every network device listed ($nets in sysfs)" \
        test "$(vfiokit-devbind --status-dev net | grep -c '^0000:')" -eq "$nets"
    check "no bridge listed" sh -c '! grep -q "class 06" /tmp/s'
    checks_done
}

devbind_move() {
    driver_bind $nic e1000 || return 1
    ip link set "$(ls /sys/bus/pci/devices/$nic/net)" down
    vfiokit-devbind -b vfio-pci ${nic#0000:} > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "bound to vfio-pci (short address), exit 0" test $rc -eq 0 -a "$(drv_of $nic)" = vfio-pci
    check "says what it did" grep -q "^$nic: bound to vfio-pci (was e1000)$" /tmp/b
    check "reports the VFIO modes the EAL finds (cdev picked, group and compat too)" \
        sh -c "grep '^$nic: VFIO modes: ' /tmp/b | grep 'cdev(auto)' | grep group | grep -q compat"
    vfiokit-devbind -b vfio-pci $nic > /tmp/b 2>&1
    check "again: already bound" grep -q "^$nic: already bound to vfio-pci$" /tmp/b
    vfiokit-devbind -u $nic > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "unbound, no driver" test $rc -eq 0 -a -z "$(drv_of $nic)"
    vfiokit-devbind -b e1000 $nic > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "back on the kernel's e1000" test $rc -eq 0 -a "$(drv_of $nic)" = e1000
    check "the kernel made its netdev again" test -n "$(ls /sys/bus/pci/devices/$nic/net 2>/dev/null)"
    check "driver_override cleared for a kernel driver" \
        test "$(cat /sys/bus/pci/devices/$nic/driver_override)" = "(null)"
    vfiokit-devbind -b nosuchdrv $nic > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "unknown driver: exit 1, names it and modprobe" sh -c "test $rc -eq 1 && grep -q \"no driver 'nosuchdrv' in this kernel .*modprobe nosuchdrv\" /tmp/b"
    vfiokit-devbind -b vfio-pci 0000:00:1e.7 > /tmp/b 2>&1; rc=$?
    check "absent device: exit 1, named" sh -c "test $rc -eq 1 && grep -q '0000:00:1e.7: no such PCI device' /tmp/b"
    vfiokit-devbind -b vfio-pci zz > /tmp/b 2>&1; rc=$?
    check "not an address: exit 2" test $rc -eq 2
    checks_done
}

devbind_route() {
    driver_bind $nic e1000 || return 1
    ifn=$(ls /sys/bus/pci/devices/$nic/net)
    check "$ifn up with 10.77.0.1/24 (a connected route)" sh -c "ip addr add 10.77.0.1/24 dev $ifn && ip link set $ifn up"
    check "the route is in /proc/net/route" grep -q "^$ifn" /proc/net/route
    vfiokit-devbind --status-dev net > /tmp/s
    check "--status marks it *Active*" grep -q "^$nic .*if=$ifn .*\*Active\*$" /tmp/s
    vfiokit-devbind -b vfio-pci $nic > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "refused: exit 1, names the interface and --force" sh -c "test $rc -eq 1 && grep -q 'bind $nic: refused: its interface $ifn has [0-9]* active route(s).*give --force' /tmp/b"
    check "still on e1000" test "$(drv_of $nic)" = e1000
    vfiokit-devbind -u $nic > /tmp/b 2>&1; rc=$?
    check "unbind refused too" test $rc -eq 1 -a "$(drv_of $nic)" = e1000
    vfiokit-devbind --force -b vfio-pci $nic > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "--force takes it" test $rc -eq 0 -a "$(drv_of $nic)" = vfio-pci
    check "its routes went with the netdev" sh -c "! grep -q '^$ifn' /proc/net/route"
    check "back to e1000" vfiokit-devbind -b e1000 $nic
    checks_done
}

devbind_group() {
    driver_bind 0000:01:02.0 e1000 || return 1
    g=$(iommu_group 0000:01:01.0)
    vfiokit-devbind -b vfio-pci 0000:01:01.0 > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "bound; the group-mate on e1000 is named with its group" \
        sh -c "test $rc -eq 0 && grep -q 'warning: 0000:01:02.0 shares IOMMU group $g with 0000:01:01.0 and is bound to e1000.*--with-group' /tmp/b"
    check "the mate was left alone" test "$(drv_of 0000:01:02.0)" = e1000
    check "no VFIO mode while the group is not viable" grep -q "^0000:01:01.0: VFIO modes: none" /tmp/b
    vfiokit-devbind -b vfio-pci --with-group 0000:01:01.0 > /tmp/b 2>&1; rc=$?
    cat /tmp/b
    check "--with-group moves the mate" sh -c "test $rc -eq 0 && test $(drv_of 0000:01:02.0) = vfio-pci"
    check "then the device has its modes" grep -q "^0000:01:01.0: VFIO modes: .*cdev(auto)" /tmp/b
    check "mate back to e1000" vfiokit-devbind -b e1000 0000:01:02.0
    checks_done
}

run devbind-status devbind_status
run devbind-move devbind_move
run devbind-route devbind_route
run devbind-group devbind_group
run info-bound-device info_bound
run info-kernel-driver info_kernel_driver
run info-shared-group info_shared_group
run info-all-devices info_all
run info-regions info_regions
