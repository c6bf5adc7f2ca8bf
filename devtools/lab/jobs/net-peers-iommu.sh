# Packet I/O against peers that are not ours, on the iommu shape: the
# guest kernel's pktgen, IPv4 stack (busybox ping) and NIC counters on the
# e1000s at 00:06.0 (hub 0) and 00:0b.0 (hub 1), against a testpmd on the
# e1000e at 00:08.0 (hub 0, port 0) and the e1000e at 00:0a.0 (hub 1, port
# 1). First DPDK's testpmd (the reference the checks are proven against),
# then vfiokit-testpmd in every VFIO mode the shape offers.
run net-peers-setup net_peers_setup 0000:00:08.0 0000:00:06.0 0000:00:0a.0 0000:00:0b.0
net_peers_dpdk "Type 1"
net_peers_vfiokit


# Telemetry and procinfo against vfiokit-testpmd on A and B, in group
# mode forced through the environment (VFIOKIT_VFIO_MODE, which /vfio/mode
# must report): one pktgen round from each peer while testpmd is in
# rxonly, then DPDK's v2 telemetry protocol, through Debian's own
# dpdk-telemetry.py 22.11, unchanged (lab.py --python puts the host's
# python3 into this guest with the stdlib modules it imports), and through
# vfiokit-telemetry, and the multi-process channel (vfiokit-procinfo, a
# secondary) must each report what pktgen sent, as must testpmd's own
# `show port stats`.
NT_PY_CMDS="/ /info /eal/params /eal/lcore/list /ethdev/list /ethdev/stats,0 /ethdev/stats,1
/ethdev/xstats,0 /ethdev/link_status,0 /ethdev/info,0 /mempool/list /mempool/info,mb_pool_0
/vfio/mode /vfio/containers /vfio/devices /heap/info"

# nt_py_replies FILE: dpdk-telemetry.py printed one reply per command of
# NT_PY_CMDS, in order, each keyed by its command (without parameters)
# and none a failure (null, DPDK's failure reply; vfiokit adds "error").
nt_py_replies() {
    i=0
    for c in $NT_PY_CMDS; do
        i=$((i + 1))
        line=$(sed -n "${i}p" "$1")
        case "$line" in
            "{\"${c%%,*}\": null"*|*'"error"'*) echo "reply $i ($c) failed: $line"; return 1 ;;
            "{\"${c%%,*}\": "*) ;;
            *) echo "reply $i is not $c's: $line"; return 1 ;;
        esac
    done
    test "$(wc -l < "$1")" -eq $i
}

net_telemetry() {
    nt_prefix=lab-telemetry
    NP_OK=yes
    # tp_open's command line plus a file prefix, so that a secondary
    # (procinfo) can attach and the telemetry socket has a known path.
    printf '#!/bin/sh\nVFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 exec vfiokit-testpmd --file-prefix %s "$@"\n' \
        $nt_prefix > /tmp/testpmd-telemetry
    chmod +x /tmp/testpmd-telemetry
    np_do tp_open /tmp/testpmd-telemetry telemetry "$NP_A" "$NP_B"
    np_do tp_cmd set fwd rxonly
    np_do tp_cmd start
    np_do np_pktgen "$NP_K0" "$NP_A_MAC" 198.18.10.2 "$NP_K1" "$NP_B_MAC" 198.18.11.2
    nt_sent0=$(pktgen_sent "$NP_K0") nt_sent1=$(pktgen_sent "$NP_K1")
    sleep 0.5
    vfiokit-telemetry -f $nt_prefix --hello /ethdev/list /ethdev/stats,0 /ethdev/stats,1 \
        /ethdev/info,0 /ethdev/link_status,0 /ethdev/xstats,0,hide_zero=true /vfio/mode \
        /vfio/devices /vfio/containers /mempool/list /eal/lcore/list > /tmp/tel.out 2>&1
    nt_tel_rc=$?
    # Commands on stdin, as a user pipes them: dpdk-telemetry.py prints
    # each reply on a line (json.dumps), no prompt and no hello.
    printf '%s\n' $NT_PY_CMDS | dpdk-telemetry.py -f $nt_prefix > /tmp/py.out 2> /tmp/py.err
    nt_py_rc=$?
    dpdk-telemetry.py -l > /tmp/pyl.out 2>&1
    nt_pyl_rc=$?
    vfiokit-procinfo --file-prefix $nt_prefix --show-port --stats > /tmp/pi.out 2>&1
    nt_pi_rc=$?
    np_do tp_cmd stop
    np_do tp_cmd show port stats all
    nt_cmds=$NP_OK
    tp_close > /dev/null
    echo "---- vfiokit-telemetry -f $nt_prefix (pktgen sent $nt_sent0 to port 0, $nt_sent1 to port 1)"
    cat /tmp/tel.out
    echo "---- vfiokit-procinfo --file-prefix $nt_prefix --show-port --stats"
    cat /tmp/pi.out
    echo "---- dpdk-telemetry.py -f $nt_prefix, commands on stdin:" $NT_PY_CMDS "(exit $nt_py_rc)"
    cat /tmp/py.out
    if [ -s /tmp/py.err ]; then echo "---- its stderr"; cat /tmp/py.err; fi
    echo "---- dpdk-telemetry.py -l (exit $nt_pyl_rc)"
    cat /tmp/pyl.out
    echo "---- python3 -c 'import sys; print(sys.version); print(sys.path)'"
    python3 -c 'import sys; print(sys.version); print(sys.path)' > /tmp/pypath.out 2>&1
    nt_path_rc=$?
    cat /tmp/pypath.out
    nt_stats0=$(grep '^{"/ethdev/stats":' /tmp/tel.out | sed -n 1p)
    nt_stats1=$(grep '^{"/ethdev/stats":' /tmp/tel.out | sed -n 2p)
    nt_ip0=$(echo "$nt_stats0" | sed -n 's/.*"ipackets":\([0-9]*\).*/\1/p')
    nt_ip1=$(echo "$nt_stats1" | sed -n 's/.*"ipackets":\([0-9]*\).*/\1/p')
    nt_pi0=$(awk '/NIC statistics for port 0 /{p=1} p && /RX-packets:/{print $2; exit}' /tmp/pi.out)
    nt_pi1=$(awk '/NIC statistics for port 1 /{p=1} p && /RX-packets:/{print $2; exit}' /tmp/pi.out)
    nt_tp0=$(tp_nic "$TP_LOG" 0 RX-packets) nt_tp1=$(tp_nic "$TP_LOG" 1 RX-packets)
    nt_py0=$(grep '^{"/ethdev/stats": ' /tmp/py.out | sed -n '1s/.*"ipackets": \([0-9]*\).*/\1/p')
    nt_py1=$(grep '^{"/ethdev/stats": ' /tmp/py.out | sed -n '2s/.*"ipackets": \([0-9]*\).*/\1/p')
    check "testpmd took every command and quit" test "$nt_cmds" = yes
    check "testpmd exited 0 (exit $TP_RC)" test "$TP_RC" -eq 0
    check "pktgen sent a round to each port ($nt_sent0, $nt_sent1)" \
        test "$nt_sent0" -eq $NP_ROUND -a "$nt_sent1" -eq $NP_ROUND
    check "vfiokit-telemetry read every reply, none an error (exit $nt_tel_rc)" test $nt_tel_rc -eq 0
    check "the hello: vfiokit, testpmd's pid, max_output_len" \
        grep -q '^{"version":"vfiokit [^"]*","pid":'"$TP_PID"',"max_output_len":65536}$' /tmp/tel.out
    check "/ethdev/list: ports 0 and 1" grep -qx '{"/ethdev/list":\[0,1\]}' /tmp/tel.out
    check "/ethdev/stats,0 ipackets ($nt_ip0) = what $NP_K0 sent" test "${nt_ip0:--1}" -eq "$nt_sent0"
    check "/ethdev/stats,1 ipackets ($nt_ip1) = what $NP_K1 sent" test "${nt_ip1:--1}" -eq "$nt_sent1"
    check "/ethdev/info,0 is $NP_A on net_e1000_em, started" \
        grep -q '^{"/ethdev/info":{"name":"'"$NP_A"'","driver_name":"net_e1000_em",.*"dev_started":1,' /tmp/tel.out
    check "/ethdev/link_status,0 UP at 1000 full-duplex" \
        grep -qx '{"/ethdev/link_status":{"status":"UP","speed":1000,"duplex":"full-duplex"}}' /tmp/tel.out
    check "/ethdev/xstats,0,hide_zero: the NIC's GPRC (rx_good_packets_hw) = $nt_sent0" \
        grep -q '^{"/ethdev/xstats":{.*"rx_good_packets_hw":'"$nt_sent0"'[,}]' /tmp/tel.out
    check "/vfio/devices: A and B" grep -q '^{"/vfio/devices":\[.*"'"$NP_A"'".*"'"$NP_B"'"' /tmp/tel.out
    check "/vfio/mode: group, type1 v2, forced" \
        grep -q '^{"/vfio/mode":{"mode":"group","reason":"forced[^"]*","type1":"v2",' /tmp/tel.out
    check "/vfio/containers: one group container with A and B, mapped" \
        grep -q '^{"/vfio/containers":\[{"id":0,"default":true,"mode":"group","translates":true,"imported":false,"mappings":[1-9][0-9]*,.*"devices":\["'"$NP_A"'","'"$NP_B"'"\]' /tmp/tel.out
    check "/mempool/list: testpmd's pool" grep -qx '{"/mempool/list":\["mb_pool_0"\]}' /tmp/tel.out
    check "/eal/lcore/list: -l 0-1" grep -qx '{"/eal/lcore/list":\[0,1\]}' /tmp/tel.out
    check "dpdk-telemetry.py exited 0 ($nt_py_rc), nothing on its stderr" \
        test $nt_py_rc -eq 0 -a ! -s /tmp/py.err
    check "dpdk-telemetry.py: one reply per command, in order, none a failure" nt_py_replies /tmp/py.out
    check "dpdk-telemetry.py /info: vfiokit, testpmd's pid" \
        grep -qx '{"/info": {"version": "vfiokit [^"]*", "pid": '"$TP_PID"', "max_output_len": 65536}}' /tmp/py.out
    check "dpdk-telemetry.py /ethdev/list: ports 0 and 1" grep -qx '{"/ethdev/list": \[0, 1\]}' /tmp/py.out
    check "dpdk-telemetry.py /ethdev/stats,0 ipackets ($nt_py0) = what $NP_K0 sent" \
        test "${nt_py0:--1}" -eq "$nt_sent0"
    check "dpdk-telemetry.py /ethdev/stats,1 ipackets ($nt_py1) = what $NP_K1 sent" \
        test "${nt_py1:--1}" -eq "$nt_sent1"
    check "dpdk-telemetry.py /vfio/mode: group, type1 v2, forced" \
        grep -q '^{"/vfio/mode": {"mode": "group", "reason": "forced[^"]*", "type1": "v2",' /tmp/py.out
    check "dpdk-telemetry.py /eal/params: the file prefix" \
        grep -q '^{"/eal/params": \[.*"--file-prefix", "'$nt_prefix'"' /tmp/py.out
    check "dpdk-telemetry.py /ethdev/xstats,0: GPRC (rx_good_packets_hw) = $nt_sent0" \
        grep -q '^{"/ethdev/xstats": {.*"rx_good_packets_hw": '"$nt_sent0"'[,}]' /tmp/py.out
    check "dpdk-telemetry.py /ethdev/link_status,0 UP at 1000 full-duplex" \
        grep -qx '{"/ethdev/link_status": {"status": "UP", "speed": 1000, "duplex": "full-duplex"}}' /tmp/py.out
    check "dpdk-telemetry.py /vfio/devices: A and B" \
        grep -q '^{"/vfio/devices": \[.*"'"$NP_A"'".*"'"$NP_B"'"' /tmp/py.out
    check "dpdk-telemetry.py /mempool/list: testpmd's pool" \
        grep -qx '{"/mempool/list": \["mb_pool_0"\]}' /tmp/py.out
    check "dpdk-telemetry.py /heap/info: bytes in use" \
        grep -q '^{"/heap/info": {.*"bytes_in_use": [1-9]' /tmp/py.out
    check "dpdk-telemetry.py -l exited 0 ($nt_pyl_rc) and lists $nt_prefix" \
        test $nt_pyl_rc -eq 0 -a "$(grep -cx "$nt_prefix" /tmp/pyl.out)" -eq 1
    check "python3 finds its stdlib from the os.pyc landmark, says nothing on stderr" \
        test $nt_path_rc -eq 0 -a "$(sed -n 3p /tmp/pypath.out)" = "" -a \
        "$(sed -n 2p /tmp/pypath.out)" = "['', '/usr/lib/python311.zip', '/usr/lib/python3.11', '/usr/lib/python3.11/lib-dynload']"
    check "vfiokit-procinfo exited 0 ($nt_pi_rc)" test $nt_pi_rc -eq 0
    check "procinfo --show-port: port 0 is $NP_A, started" \
        grep -q "Port 0 ($NP_A, net_e1000_em): started" /tmp/pi.out
    check "procinfo --show-port: links up at 1 Gbps" \
        test "$(grep -c 'link: Link up at 1 Gbps FDX' /tmp/pi.out)" -eq 2
    check "procinfo --stats port 0 RX-packets ($nt_pi0) = what $NP_K0 sent" test "${nt_pi0:--1}" -eq "$nt_sent0"
    check "procinfo --stats port 1 RX-packets ($nt_pi1) = what $NP_K1 sent" test "${nt_pi1:--1}" -eq "$nt_sent1"
    check "testpmd's own port 0 RX-packets ($nt_tp0) agree" test "${nt_tp0:--1}" -eq "$nt_sent0"
    check "testpmd's own port 1 RX-packets ($nt_tp1) agree" test "${nt_tp1:--1}" -eq "$nt_sent1"
    check "the telemetry socket is gone with testpmd" test ! -e /var/run/dpdk/$nt_prefix/dpdk_telemetry.v2
    checks_done
}
run net-telemetry net_telemetry

# vDPA on this 39-bit IOMMU: vfiokit-vdpa takes the modern virtio-net with
# iommu_platform at 00:0c.0 (hub 1) but refuses a front end whose memory
# lies above 2^39, naming the width and the fix.
run vdpa-width vd_refuses_width 0000:00:0c.0

# The examples as a user builds them: out of tree against the installed
# library (devtools/examples-build.sh), each loading libvfiokit.so.0. The
# edu DMA example on the edu at 00:03.0 (its own IOMMU group) once per VFIO
# mode, and once linked with libvfiokit.a (the mode auto picks); l2fwd
# between A and B, counted by the kernel peers.
vfio_bind 0000:00:03.0
each_mode example-edu-dma 0000:00:03.0 edu-dma-shared -a 0000:00:03.0
run example-edu-dma-static edu-dma-static -a 0000:00:03.0
run example-l2fwd net_l2fwd l2fwd-shared
