# Main job (devtools/main.sh) on the iommu shape: the VFIO inventory in
# short form, then vfiokit-testpmd forwarding between two NICs on separate
# QEMU hubs for a few seconds, with the guest kernel's pktgen as the source.
# The edus, the e1000 at 00:05.0 and the two testpmd ports go to vfio-pci;
# the NIC behind the bridge stays on e1000, so the inventory shows its
# group-mate 0000:01:01.0 blocked by it.
TESTPMD=vfiokit-testpmd

# inventory_short: one line per device (vfiokit-info's text, condensed):
# address, ids, class, IOMMU group, driver, and the VFIO mode 'auto' picks.
inventory_short() {
    vfiokit-info > /tmp/inventory || { cat /tmp/inventory; return 1; }
    awk '/^(kernel|process mode):|PCI device\(s\)$/ { print; next }
        /^0000:/ { addr = $1; ids = $2; class = $4; driver = $NF; next }
        /^  iommu group/ { group = $3; sub(":", "", group) }
        /^  auto / { printf "  %s  %s  class %s  group %-5s %-10s vfio %s\n", addr, ids, class, group, driver, $2 }' \
        /tmp/inventory
}

# forward_demo: TESTPMD forwards (io) between port 0 (e1000e 00:08.0, hub 0)
# and port 1 (e1000e 00:0a.0, hub 1) for about 3 s, while pktgen on hub 0's
# kernel e1000 sends rounds of frames to hub 1's kernel e1000: the frames
# reach it only through vfiokit. Each round is received before the next
# (guest-net.sh, NP_ROUND).
forward_demo() {
    if ! command -v $TESTPMD > /dev/null; then
        echo "$TESTPMD is not in this guest"
        return 1
    fi
    NP_OK=yes
    net_snap "$NP_K1" /tmp/k1.demo
    np_do tp_open $TESTPMD demo "$NP_A" "$NP_B"
    np_do tp_cmd set fwd io
    np_do tp_cmd start
    fd_sent=0
    fd_end=$(($(date +%s) + 3))
    while [ "$(date +%s)" -lt $fd_end ] && np_do np_pktgen "$NP_K0" "$NP_K1_MAC" 198.18.11.99; do
        fd_sent=$((fd_sent + $(pktgen_sent "$NP_K0")))
        wait_for 10 net_rx_reached "$NP_K1" /tmp/k1.demo $fd_sent || break
    done
    fd_got=$(net_rx_settled "$NP_K1" /tmp/k1.demo $fd_sent)
    np_do tp_cmd stop
    np_do tp_cmd show port stats all
    fd_cmds=$NP_OK
    tp_close
    echo "---- pktgen on $NP_K0 (hub 0) sent $fd_sent frames to $NP_K1 (hub 1);" \
         "$TESTPMD forwarded port 0 -> port 1: RX-packets $(tp_fwd "$TP_LOG" 1 0 RX-packets)," \
         "TX-packets $(tp_fwd "$TP_LOG" 1 1 TX-packets); $NP_K1 received $fd_got"
    check "$TESTPMD took every command and quit" test "$fd_cmds" = yes
    check "$TESTPMD exited 0 (exit $TP_RC)" test "$TP_RC" -eq 0
    check "pktgen sent frames ($fd_sent)" test "$fd_sent" -gt 0
    check "every one reached $NP_K1 ($fd_got)" test "${fd_got:--1}" -eq $fd_sent
    checks_done
}

for bdf in 0000:00:03.0 0000:00:04.0 0000:00:05.0 0000:01:01.0; do
    vfio_bind $bdf
done
run peers net_peers_setup 0000:00:08.0 0000:00:06.0 0000:00:0a.0 0000:00:0b.0
run inventory inventory_short
run forwarding forward_demo
