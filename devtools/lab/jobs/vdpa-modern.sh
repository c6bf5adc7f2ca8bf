# vDPA on the modern shape (7.3 pair), once per translated VFIO mode: the
# modern-only virtio-net with iommu_platform at 00:06.0 (hub 0, 48-bit
# IOMMU) is served by vfiokit-vdpa to DPDK's testpmd, the front end
# (virtio_user on the vhost-user socket, --no-pci), while the e1000e at
# 00:05.0 (hub 0) on the guest kernel's driver is the peer that counts
# (pktgen, its rx counters). The igb at 00:04.0 on hub 0 stays down on its
# kernel driver and sends nothing.
#
# Per mode: front end A sends counted bursts to the peer, receives a
# counted pktgen stream, then streams freely for VD_STREAM s (vfiokit-vdpa's
# CPU time meanwhile) and quits mid-stream; front end B connects to the
# same socket and sends counted bursts again. vfiokit-vdpa's own counts
# (ring progress from the used indexes) must match testpmd's.
export VFIOKIT_LAB_SHAPE=modern
VD_DEV=0000:00:06.0
VD_PEER=0000:00:05.0
VD_BURSTS=4   # rounds of `start tx_first`: a burst of 32 frames each
VD_ROUNDS=3   # pktgen rounds of NP_ROUND frames toward the device
VD_STREAM=3   # seconds of free-running txonly before front end A quits

vdpa_setup() {
    NP_K0=$(net_dev $VD_PEER) NP_K0_MAC=$(net_mac $VD_PEER)
    # The guest kernel's virtio_net has the device before vfio-pci does.
    VD_KMAC=$(virtio_net_mac $VD_DEV)
    check "the kernel's virtio-net $VD_DEV has a MAC ($VD_KMAC)" test -n "$VD_KMAC"
    net_up $VD_PEER 198.18.10.1/24
    check "peer $VD_PEER ($NP_K0, $NP_K0_MAC) up with carrier" carrier_is "$NP_K0" 1
    check "the igb 00:04.0 sends nothing: down" \
        sh -c "! ip link show $(net_dev 0000:00:04.0) | grep -q ',UP'"
    vfio_bind $VD_DEV
    check "$VD_DEV on vfio-pci" test -e /sys/bus/pci/drivers/vfio-pci/$VD_DEV
    VD_V=$(dpdk_newest)
    check "a DPDK runs here ($VD_V)" test -n "$VD_V"
    checks_done
}

# vd_bursts: VD_BURSTS rounds of `start tx_first` and `stop` (testpmd in
# rxonly: one burst of txonly frames, then nothing).
vd_bursts() {
    vb_i=0
    while [ $vb_i -lt $VD_BURSTS ]; do
        np_do tp_cmd start tx_first
        np_do tp_cmd stop
        vb_i=$((vb_i + 1))
    done
}

# vd_sum LOG FIRST LAST FIELD: port 0's FIELD summed over stops FIRST..LAST.
vd_sum() {
    vs_s=0 vs_i=$2
    while [ $vs_i -le $3 ]; do
        vs_s=$((vs_s + $(tp_fwd "$1" $vs_i 0 "$4" | grep . || echo -1000000)))
        vs_i=$((vs_i + 1))
    done
    echo $vs_s
}

uptime_cs() { read -r u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }

vdpa_mode() {
    NP_OK=yes
    a_tx= a_tx_got= a_rx_sent= a_rx= a_stream= b_tx= b_tx_got=
    if ! vd_start $VD_DEV; then
        check "vfiokit-vdpa serves $VD_DEV" false
        checks_done
        return 1
    fi
    # The device's MAC, as the driver read it from its config space: the
    # front end's too (pktgen sends to it).
    VD_MAC=$(sed -n "s/^vdpa device $VD_DEV: virtio-net \([0-9a-f:]*\),.*/\1/p" "$VD_LOG")
    check "vfiokit-vdpa read the device's MAC, the kernel's ($VD_MAC = $VD_KMAC)" \
        test -n "$VD_MAC" -a "$VD_MAC" = "$VD_KMAC"
    net_snap "$NP_K0" /tmp/k0.start
    # Front end A: counted bursts to the peer.
    np_do vd_open "$VD_V" vdpa-a -- --eth-peer=0,"$NP_K0_MAC"
    np_do tp_cmd set fwd rxonly
    net_snap "$NP_K0" /tmp/k0.snap
    vd_bursts
    [ $NP_OK = yes ] && a_tx_got=$(net_rx_settled "$NP_K0" /tmp/k0.snap $((VD_BURSTS * 32)))
    # A counted pktgen stream from the peer to the device's MAC.
    np_do tp_cmd start
    a_rx_sent=0 vm_i=0
    while [ $vm_i -lt $VD_ROUNDS ] && np_do np_pktgen "$NP_K0" "$VD_MAC" 198.18.10.2; do
        a_rx_sent=$((a_rx_sent + $(pktgen_sent "$NP_K0")))
        sleep 0.5
        vm_i=$((vm_i + 1))
    done
    np_do tp_cmd stop
    # Free-running txonly: vfiokit-vdpa's CPU time while the device streams.
    np_do tp_cmd set fwd txonly
    np_do vd_usr1
    vm_k0=$(vd_stat kicks) vm_w0=$(vd_stat relay_wakeups)
    vm_c0=$(vd_cpu) vm_t0=$(uptime_cs) vm_th0=$(vd_threads)
    np_do tp_cmd start
    sleep $VD_STREAM
    vm_c1=$(vd_cpu) vm_t1=$(uptime_cs) vm_th1=$(vd_threads)
    np_do vd_usr1
    vm_k1=$(vd_stat kicks) vm_w1=$(vd_stat relay_wakeups)
    # Front end A quits mid-stream.
    a_cmds=$NP_OK
    tp_close > /dev/null
    a_rc=$TP_RC a_log=$TP_LOG
    net_rx_quiet "$NP_K0"
    vd_usr1
    a_tx_used=$(vd_stat tx_used) a_rx_used=$(vd_stat rx_used) a_ended=$(vd_stat ended)
    a_mapped=$(vd_stat mapped_bytes)
    # Front end B on the same socket: counted bursts again.
    NP_OK=yes
    np_do vd_open "$VD_V" vdpa-b -- --eth-peer=0,"$NP_K0_MAC"
    np_do tp_cmd set fwd rxonly
    net_snap "$NP_K0" /tmp/k0.snap
    vd_bursts
    [ $NP_OK = yes ] && b_tx_got=$(net_rx_settled "$NP_K0" /tmp/k0.snap $((VD_BURSTS * 32)))
    b_cmds=$NP_OK
    tp_close > /dev/null
    b_rc=$TP_RC b_log=$TP_LOG
    vd_stop
    cat "$VD_LOG"

    # A's numbers: stops 1..VD_BURSTS bursts, VD_BURSTS+1 rxonly, then the
    # stream (quit).
    a_tx=$(vd_sum "$a_log" 1 $VD_BURSTS TX-packets)
    a_rx=$(tp_fwd "$a_log" $((VD_BURSTS + 1)) 0 RX-packets)
    a_rx_drop=$(tp_fwd "$a_log" $((VD_BURSTS + 1)) 0 RX-dropped)
    a_stream=$(tp_fwd "$a_log" $((VD_BURSTS + 2)) 0 TX-packets)
    b_tx=$(vd_sum "$b_log" 1 $VD_BURSTS TX-packets)
    vm_ticks=$((vm_c1 - vm_c0)) vm_cs=$((vm_t1 - vm_t0))
    echo "---- vfiokit-vdpa on $VD_DEV ($VFIOKIT_VFIO_MODE), front end DPDK $VD_V testpmd, peer $NP_K0"
    echo "vdpa txonly: front end A TX-packets $a_tx, $NP_K0 rx_packets +${a_tx_got:-?}"
    echo "vdpa rxonly: pktgen $NP_K0 sent $a_rx_sent, front end A RX-packets ${a_rx:-?}"
    echo "vdpa stream: front end A TX-packets ${a_stream:-?} in ${VD_STREAM} s, quit mid-stream; vfiokit-vdpa CPU $vm_ticks ticks (1/100 s) in $vm_cs cs of wall time; kicks relayed $((vm_k1 - vm_k0)), relay wakeups $((vm_w1 - vm_w0))"
    echo "vdpa threads' CPU ticks before the stream: $vm_th0; after: $vm_th1"
    echo "vdpa restart: front end B TX-packets $b_tx, $NP_K0 rx_packets +${b_tx_got:-?}"
    check "vfiokit-vdpa ran in $VFIOKIT_VFIO_MODE mode" grep -q "^VFIO mode: $VFIOKIT_VFIO_MODE " "$VD_LOG"
    check "its device has a container of its own" grep -q "vdpa device $VD_DEV: .*container [1-9]" "$VD_LOG"
    check "front end A took every command and quit (exit $a_rc)" test "$a_cmds $a_rc" = "yes 0"
    check "A sent its $VD_BURSTS bursts (TX-packets $a_tx)" test "$a_tx" -eq $((VD_BURSTS * 32))
    check "$NP_K0 rx_packets grew by exactly that (+${a_tx_got:-none})" test "${a_tx_got:--1}" -eq "$a_tx"
    check "pktgen sent $((VD_ROUNDS * NP_ROUND)) to $VD_MAC ($a_rx_sent)" test "$a_rx_sent" -eq $((VD_ROUNDS * NP_ROUND))
    check "A received exactly that (RX-packets ${a_rx:-none})" test "${a_rx:--1}" -eq "$a_rx_sent"
    check "A dropped none (RX-dropped ${a_rx_drop:-none})" test "${a_rx_drop:--1}" -eq 0
    check "A streamed (TX-packets ${a_stream:-none})" test "${a_stream:-0}" -gt 0
    check "the kernel rang the device's doorbell (VFIO ioeventfd), not a thread" \
        grep -q "kicks rung by the kernel (VFIO ioeventfd)" "$VD_LOG"
    check "vfiokit-vdpa used under 10% of a CPU during the stream ($vm_ticks ticks in $vm_cs cs)" \
        test $((vm_ticks * 10)) -lt "$vm_cs"
    check "vfiokit-vdpa's tx ring count = A's TX-packets ($a_tx_used = $a_tx + ${a_stream:-?})" \
        test "${a_tx_used:--1}" -eq $((a_tx + ${a_stream:-0}))
    check "vfiokit-vdpa's rx ring count = A's RX-packets ($a_rx_used)" test "${a_rx_used:--1}" -eq "${a_rx:--2}"
    check "A's end was seen and its table unmapped (ended $a_ended, mapped_bytes $a_mapped)" \
        test "$a_ended $a_mapped" = "1 0"
    check "front end B took every command and quit (exit $b_rc)" test "$b_cmds $b_rc" = "yes 0"
    check "B sent its $VD_BURSTS bursts (TX-packets $b_tx)" test "$b_tx" -eq $((VD_BURSTS * 32))
    check "$NP_K0 rx_packets grew by exactly that (+${b_tx_got:-none})" test "${b_tx_got:--1}" -eq "$b_tx"
    check "vfiokit-vdpa's tx ring count grew by B's TX-packets ($(vd_stat tx_used))" \
        test "$(vd_stat tx_used)" -eq $((a_tx_used + b_tx))
    check "two front ends served, both gone, nothing mapped" \
        test "$(vd_stat front_ends) $(vd_stat ended) $(vd_stat mapped_bytes)" = "2 2 0"
    check "each front end's table was mapped, and unmapped when it went" \
        test "$(grep -c 'memory table: \[' "$VD_LOG") $(grep -c 'every mapping removed' "$VD_LOG")" = "2 2"
    check "the device started for each ($(vd_stat starts))" test "$(vd_stat starts)" -eq 2
    check "vfiokit-vdpa exited 0 on SIGTERM (exit $VD_RC)" test "$VD_RC" -eq 0
    for vm_c in $NET_RX_COUNTERS; do
        [ $vm_c = rx_packets ] && continue
        vm_v=$(net_delta "$NP_K0" /tmp/k0.start $vm_c)
        [ $vm_c = rx_missed_errors ] && continue  # the free-running stream outruns the peer
        check "$NP_K0 $vm_c did not grow (+$vm_v)" test "$vm_v" -eq 0
    done
    checks_done
}

run vdpa-setup vdpa_setup
each_mode vdpa $VD_DEV vdpa_mode
