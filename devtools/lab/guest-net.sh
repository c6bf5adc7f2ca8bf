# Packet helpers for lab jobs (sourced by /init after lib.sh; busybox sh):
# kernel NICs as peers, testpmd sessions, and the kernel-peer checks of the
# net-peers-SHAPE jobs. They use lib.sh's run, check, wait_for, vfio_bind
# and the DPDK helpers.

# --- Kernel NICs as peers: addresses, pktgen, ping, counters ----------------
# A NIC left on the guest kernel's driver is a peer that is not ours: the
# kernel's pktgen sends counted streams from it, busybox ping goes through
# the kernel's IPv4 stack, and its counters (/sys/class/net/DEV/statistics)
# say what reached it. The lab kernel has pktgen built in
# (CONFIG_NET_PKTGEN=y, no modules): /proc/net/pktgen exists from boot.

# net_dev BDF: the name of BDF's kernel netdev (empty when it has none).
net_dev() {
    ls "/sys/bus/pci/devices/$1/net" 2>/dev/null | head -1
}

# net_mac BDF: the MAC address of BDF's kernel netdev. Taken before the NIC
# goes to vfio-pci, it is the address a userspace driver reads from the
# same EEPROM. Non-zero without a netdev.
net_mac() {
    nm_dev=$(net_dev "$1")
    [ -n "$nm_dev" ] && cat "/sys/class/net/$nm_dev/address"
}

# net_up BDF ADDR/PREFIX: BDF's kernel netdev up with that IPv4 address
# (and no other), waiting up to 20 s for its carrier. Says why on failure.
net_up() {
    nu_dev=$(net_dev "$1")
    if [ -z "$nu_dev" ]; then
        echo "net_up $1: no kernel netdev (driver: $(basename "$(readlink /sys/bus/pci/devices/$1/driver 2>/dev/null)" 2>/dev/null))"
        return 1
    fi
    ip addr flush dev "$nu_dev" && ip addr add "$2" dev "$nu_dev" && ip link set "$nu_dev" up ||
        { echo "net_up $1: could not give $nu_dev address $2"; return 1; }
    wait_for 20 carrier_is "$nu_dev" 1 || { echo "net_up $1: $nu_dev has no carrier after 20 s"; return 1; }
}

# net_stat DEV COUNTER: one counter of a kernel netdev (rx_packets, ...).
net_stat() {
    cat "/sys/class/net/$1/statistics/$2"
}

# Receive counters a peer's check reads: the packets, and every rx error
# counter the kernel keeps (a NIC driver fills those it has; the rest stay 0).
NET_RX_COUNTERS="rx_packets rx_errors rx_dropped rx_crc_errors rx_frame_errors \
rx_length_errors rx_missed_errors rx_over_errors rx_fifo_errors"

# net_snap DEV FILE: DEV's receive counters now, as "name value" lines.
net_snap() {
    for ns_c in $NET_RX_COUNTERS; do
        echo "$ns_c $(net_stat "$1" "$ns_c")"
    done > "$2"
}

# net_delta DEV FILE COUNTER: how much COUNTER grew since net_snap DEV FILE.
net_delta() {
    nd_was=$(awk -v c="$3" '$1 == c { print $2 }' "$2")
    echo $(( $(net_stat "$1" "$3") - ${nd_was:-0} ))
}

# net_rx_settled DEV FILE EXPECTED: wait (10 s at most) until DEV's
# rx_packets grew by EXPECTED since the snapshot, then 0.5 s more so that a
# frame too many shows too. Prints the growth.
net_rx_settled() {
    wait_for 10 net_rx_reached "$@"
    sleep 0.5
    net_delta "$1" "$2" rx_packets
}

# net_rx_reached DEV FILE N: DEV's rx_packets grew by N or more since the
# snapshot.
net_rx_reached() {
    [ "$(net_delta "$1" "$2" rx_packets)" -ge "$3" ]
}

# net_e1000_stats_fresh: the e1000 driver copies the NIC's error registers
# into the netdev's counters from its watchdog, every 2 s; wait for one
# round before reading error counters (e1000e and igb read them on demand).
net_e1000_stats_fresh() {
    sleep 2.5
}

# pktgen_reset: no device on pktgen's thread for CPU 0 (kpktgend_0).
pktgen_reset() {
    [ -e /proc/net/pktgen/pgctrl ] ||
        { echo "no /proc/net/pktgen: the kernel has no pktgen (CONFIG_NET_PKTGEN)"; return 1; }
    echo rem_device_all > /proc/net/pktgen/kpktgend_0
    # The thread lets its devices go on its next round, not at once.
    wait_for 5 pktgen_empty || { echo "pktgen kept its devices: $(ls /proc/net/pktgen)"; return 1; }
}

# pktgen_empty: no device is on any pktgen thread (no /proc/net/pktgen/DEV).
pktgen_empty() {
    [ -z "$(ls /proc/net/pktgen | grep -v -e '^kpktgend_' -e '^pgctrl$')" ]
}

# pktgen_add DEV COUNT DST_MAC DST_IP: DEV (a kernel netdev, up, with
# carrier) will send COUNT UDP frames of 60 bytes to DST_MAC and DST_IP at
# the next pktgen_run, as fast as it can. pktgen_reset first.
pktgen_add() {
    echo "add_device $1" > /proc/net/pktgen/kpktgend_0 ||
        { echo "pktgen: add_device $1 refused"; return 1; }
    for pa_c in "count $2" "pkt_size 60" "delay 0" "clone_skb 0" "dst $4" "dst_mac $3"; do
        echo "$pa_c" > "/proc/net/pktgen/$1" ||
            { echo "pktgen $1: '$pa_c' refused: $(grep Result: "/proc/net/pktgen/$1")"; return 1; }
    done
}

# pktgen_run: every added device sends its stream; returns when all are done.
pktgen_run() {
    echo start > /proc/net/pktgen/pgctrl
}

# pktgen_sent DEV: the frames DEV handed to its driver in the last run
# (pktgen's pkts-sofar; 0 if DEV is not on pktgen).
pktgen_sent() {
    ps_n=$(sed -n 's/.*pkts-sofar: \([0-9]*\).*/\1/p' "/proc/net/pktgen/$1" 2>/dev/null)
    echo "${ps_n:-0}"
}

# ping_replies DEV ADDR N: busybox ping sends N echo requests to ADDR
# through DEV (the kernel's IPv4 stack), each as soon as the previous one
# was answered, for 20 s at most; shows ping's output and prints the
# number of replies as its last line.
ping_replies() {
    ping -A -c "$3" -w 20 -I "$1" "$2" > /tmp/ping.out 2>&1
    cat /tmp/ping.out
    pr_n=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out)
    echo "${pr_n:-0}"
}

# --- testpmd sessions: vfiokit-testpmd or DPDK's, at the same prompt ---------
# vfiokit-testpmd takes DPDK testpmd's options, prompt (`testpmd> `) and
# statistics layout, so one set of helpers drives either: PROG is
# vfiokit-testpmd or dpdk-testpmd-VERSION, and the options only one of them
# needs are added here. Commands come from a FIFO; the prompt, written
# unbuffered, tells when each is done (the rest of the output may stay
# buffered until exit, so statistics are read from the log after quit).
# Ports are numbered in PCI address order (as DPDK's probe numbers them).

# tp_open PROG NAME BDF... [-- APP-ARGS...]: start PROG interactive on the
# devices (bound to vfio-pci) with 256-entry rings and bursts of 32, output
# in /tmp/tp-NAME.log (TP_LOG); waits for its first prompt.
tp_open() {
    TP_PROG=$1 TP_LOG=/tmp/tp-$2.log
    shift 2
    to_eal="-l 0-1"
    to_app="-i --rxd=256 --txd=256 --burst=32"
    case $TP_PROG in
        # DPDK: no runtime files, EAL's VFIO and probe lines in the log, and
        # a small mbuf pool (its default is sized for 32 ports).
        dpdk-testpmd-*)
            to_eal="$to_eal -n 1 --in-memory --log-level=lib.eal:info --log-level=bus.pci:info"
            to_app="$to_app --total-num-mbufs=2048" ;;
    esac
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        to_eal="$to_eal -a $1"
        shift
    done
    [ "${1:-}" = -- ] && shift
    : > /tmp/tp.cmds
    rm -f /tmp/tp.in && mkfifo /tmp/tp.in
    # shellcheck disable=SC2086
    "$TP_PROG" $to_eal -- $to_app "$@" < /tmp/tp.in > "$TP_LOG" 2>&1 &
    TP_PID=$!
    exec 6> /tmp/tp.in
    TP_PROMPTS=1
    dpdk_prompts $TP_PID "$TP_LOG" 1 ||
        { echo "$TP_PROG gave no prompt (exited, or 120 s passed)"; return 1; }
}

# tp_cmd COMMAND...: send one command; returns once the next prompt shows.
tp_cmd() {
    # Never write to a FIFO nobody reads: SIGPIPE would end the job's shell.
    kill -0 $TP_PID 2>/dev/null || { echo "$TP_PROG is gone before '$*'"; return 1; }
    echo "$*" >&6 || return 1
    echo "$*" >> /tmp/tp.cmds
    TP_PROMPTS=$((TP_PROMPTS + 1))
    dpdk_prompts $TP_PID "$TP_LOG" $TP_PROMPTS ||
        { echo "$TP_PROG: no prompt after '$*'"; return 1; }
}

# tp_close: quit, wait (60 s at most, then kill), show the log; TP_RC is
# its exit status.
tp_close() {
    kill -0 $TP_PID 2>/dev/null && echo quit >&6
    exec 6>&-
    tc_n=300
    while kill -0 $TP_PID 2>/dev/null && [ $tc_n -gt 0 ]; do
        sleep 0.2
        tc_n=$((tc_n - 1))
    done
    kill -0 $TP_PID 2>/dev/null && { echo "$TP_PROG did not quit within 60 s: killed"; kill -9 $TP_PID; }
    wait $TP_PID
    TP_RC=$?
    echo quit >> /tmp/tp.cmds
    mv "$TP_LOG" "$TP_LOG.raw"
    tp_clean "$TP_LOG.raw" /tmp/tp.cmds > "$TP_LOG"
    cat "$TP_LOG"
    echo
}

# tp_clean LOG CMDS: LOG without what the prompt wrote into it. testpmd's
# prompt and the echo of each command (CMDS, one a line) are written to the
# terminal at once, while the rest of its output waits in stdio's buffer
# when that is not a terminal, so a prompt ("testpmd> ") or an echoed
# command ("stop" and CR LF) can land in the middle of a statistics line.
# Both are cut out and the line joined again.
tp_clean() {
    awk 'NR == FNR { if ($0 != "") cmd[++n] = $0; next }
        {
            line = held $0
            held = ""
            gsub(/testpmd> /, "", line)
            if (line ~ /\r$/) {
                sub(/\r$/, "", line)
                for (i = 1; i <= n; i++) {
                    l = length(cmd[i])
                    if (l <= length(line) && substr(line, length(line) - l + 1) == cmd[i]) {
                        held = substr(line, 1, length(line) - l)
                        next
                    }
                }
            }
            print line
        }
        END { if (held != "") print held }' "$2" "$1"
}

# tp_fwd LOG N PORT FIELD: FIELD (RX-packets, RX-dropped, TX-packets,
# TX-dropped) of PORT in the forward statistics printed by the N-th stop.
tp_fwd() {
    awk -v n="$2" -v p="$3" -v f="$4:" '
        /Accumulated forward statistics/ { stops++; cur = ""; next }
        /Forward statistics for port/ { for (i = 1; i <= NF; i++) if ($i == "port") { cur = $(i + 1); break }; next }
        stops == n - 1 && cur == p { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }' "$1"
}

# tp_nic LOG PORT FIELD: FIELD (RX-errors, RX-missed, TX-errors, ...) of
# PORT in the last `show port stats` block of LOG.
tp_nic() {
    awk -v p="$2" -v f="$3:" '
        /NIC statistics for port/ { for (i = 1; i <= NF; i++) if ($i == "port") { cur = $(i + 1); break }; next }
        /^ *#####/ { cur = ""; next }
        cur == p { for (i = 1; i < NF; i++) if ($i == f) v = $(i + 1) }
        END { print v }' "$1"
}

# --- Kernel peers of a testpmd (the net-peers-SHAPE jobs) --------------------
# Two ports for a testpmd, A on QEMU hub 0 and B on hub 1, and on each hub a
# NIC that stays on the kernel's driver as their peer, K0 and K1. The hubs
# are apart, so io forwarding between A and B makes no loop. Traffic exists
# only while a check makes it, and each check waits until it has all
# arrived, so no frame of one check is counted by another.
#   K0 198.18.10.1/24 (pktgen, ping) -- hub 0 -- port 0 = A (198.18.10.2 for icmpecho)
#   K1 198.18.11.1/24 (pktgen, ping) -- hub 1 -- port 1 = B (198.18.11.2 for icmpecho)
# Frames go in rounds that fit in a receiving ring (256 descriptors) even
# before its driver looks at it. A stream that outruns the receiver makes
# QEMU queue frames for the full NIC, and its e1000 then drops them as
# missed (seen with a kernel peer busy running pktgen: 2000 frames sent,
# 745 received, rx_missed_errors up): a count that depends on the host's
# speed, not on the driver under test.
NP_ROUND=200    # frames in each pktgen round
NP_ROUNDS=5     # pktgen rounds per stream
NP_FRAMES=$((NP_ROUND * NP_ROUNDS))
NP_BURSTS=4     # rounds of `start tx_first` (a burst of 32 from each port)
NP_PINGS=20     # echo requests to each icmpecho port
# The smoke session of net_counts_by_mode: the same checks on one round.
NP_SMOKE_ROUNDS=1
NP_SMOKE_BURSTS=1

# net_peers_setup A K0 B K1: a step; note the NICs' MAC addresses, bring K0
# and K1 up with their addresses, and give A and B to vfio-pci. Sets the
# NP_* variables the other net_* steps use.
net_peers_setup() {
    NP_A=$1 NP_B=$3
    NP_K0=$(net_dev "$2") NP_K1=$(net_dev "$4")
    NP_A_MAC=$(net_mac "$1") NP_B_MAC=$(net_mac "$3")
    NP_K0_MAC=$(net_mac "$2") NP_K1_MAC=$(net_mac "$4")
    check "A ($1) sorts before B ($3): ports 0 and 1" \
        test "$(printf '%s\n' "$1" "$3" | sort | head -1)" = "$1"
    check "A $1 has a MAC ($NP_A_MAC)" test -n "$NP_A_MAC"
    check "B $3 has a MAC ($NP_B_MAC)" test -n "$NP_B_MAC"
    net_up "$2" 198.18.10.1/24
    check "K0 $2 ($NP_K0, $NP_K0_MAC) up with 198.18.10.1/24 and carrier" carrier_is "$NP_K0" 1
    net_up "$4" 198.18.11.1/24
    check "K1 $4 ($NP_K1, $NP_K1_MAC) up with 198.18.11.1/24 and carrier" carrier_is "$NP_K1" 1
    vfio_bind "$1"
    check "A $1 on vfio-pci" test -e "/sys/bus/pci/drivers/vfio-pci/$1"
    vfio_bind "$3"
    check "B $3 on vfio-pci" test -e "/sys/bus/pci/drivers/vfio-pci/$3"
    checks_done
}

# np_do CMD...: run CMD while the session is healthy (NP_OK=yes); on
# failure say what failed and mark the session failed, so that later
# commands are not sent to a testpmd that is gone.
np_do() {
    [ "$NP_OK" = yes ] || return 1
    "$@" && return 0
    echo "failed: $*"
    NP_OK=no
    return 1
}

# np_pktgen DEV DST_MAC DST_IP [DEV DST_MAC DST_IP]: one pktgen round of
# NP_ROUND frames from each DEV at once.
np_pktgen() {
    pktgen_reset || return 1
    while [ $# -ge 3 ]; do
        pktgen_add "$1" $NP_ROUND "$2" "$3" || return 1
        shift 3
    done
    pktgen_run
}

# np_dpdk_checks LOG MODE: for DPDK's testpmd, that its VFIO used MODE
# ("Type 1" or "No-IOMMU") and that it numbered A and B as ports 0 and 1.
np_dpdk_checks() {
    ndc_type=$(grep -o "IOMMU type [0-9]* ([^)]*)" "$1" | head -1)
    check "DPDK's VFIO uses $2 (${ndc_type:-no IOMMU type in the log})" test "${ndc_type#*(}" = "$2)"
    ndc_probed=$(sed -n 's/.*Probe PCI driver: .* device: \([0-9a-f:.]*\).*/\1/p' "$1" | xargs)
    check "ports 0 and 1 are A and B (probed: $ndc_probed)" test "$ndc_probed" = "$NP_A $NP_B"
}

# net_counts PROG NAME [DPDK_MODE]: a step; one PROG session on A and B
# with exact counts against the kernel peers:
#   rxonly:   pktgen on K0 and K1 sends NP_FRAMES to A and to B (in
#             rounds); each port's RX-packets is what its peer sent, and
#             nothing comes back;
#   txonly:   NP_BURSTS rounds of `start tx_first` (a burst of 32 of
#             txonly's frames, then rxonly) and stop, A to K0 and B to K1
#             (--eth-peer): each peer's rx_packets grew by the port's
#             TX-packets, and no burst lost a frame. (A bounded count that
#             fits in the peer's ring, not a free-running txonly: see
#             NP_ROUND.)
#   io:       pktgen on K0 to K1's MAC enters A, leaves B, and K1's
#             rx_packets grows by what K0 sent; the same from K1 to K0;
# and over the session no port counts RX errors or misses and the peers'
# rx error counters stay 0. DPDK_MODE, for DPDK's testpmd, is the IOMMU
# type its EAL must set (np_dpdk_checks).
net_counts() {
    nc_prog=$1 nc_name=$2 nc_dpdk=${3:-}
    # The session's size (NP_SESSION): full, or the smoke of the modes
    # after the first (net_counts_by_mode).
    if [ "${NP_SESSION:-full}" = smoke ]; then
        nc_rounds=$NP_SMOKE_ROUNDS nc_bursts=$NP_SMOKE_BURSTS
    else
        nc_rounds=$NP_ROUNDS nc_bursts=$NP_BURSTS
    fi
    nc_frames=$((NP_ROUND * nc_rounds))
    echo "net counts, ${NP_SESSION:-full} session: $nc_rounds pktgen round(s) of $NP_ROUND frames per stream, $nc_bursts txonly burst(s) of 32 per port"
    nc_rx_sent0= nc_rx_sent1= nc_tx_got0= nc_tx_got1= nc_io_sent0= nc_io_sent1= nc_io_got0= nc_io_got1=
    NP_OK=yes
    net_snap "$NP_K0" /tmp/k0.start
    net_snap "$NP_K1" /tmp/k1.start
    np_do tp_open "$nc_prog" "$nc_name" "$NP_A" "$NP_B" -- \
        --eth-peer=0,"$NP_K0_MAC" --eth-peer=1,"$NP_K1_MAC"
    # rxonly: pktgen -> A, pktgen -> B, in rounds. The ports count frames
    # as their NICs take them; a round fits in a port's ring even before
    # it polls, and 0.5 s lets it drain the ring.
    net_snap "$NP_K0" /tmp/k0.snap
    net_snap "$NP_K1" /tmp/k1.snap
    np_do tp_cmd set fwd rxonly
    np_do tp_cmd start
    nc_rx_sent0=0 nc_rx_sent1=0 nc_i=0
    while [ $nc_i -lt $nc_rounds ] && np_do np_pktgen "$NP_K0" "$NP_A_MAC" 198.18.10.2 "$NP_K1" "$NP_B_MAC" 198.18.11.2; do
        nc_rx_sent0=$((nc_rx_sent0 + $(pktgen_sent "$NP_K0"))) nc_rx_sent1=$((nc_rx_sent1 + $(pktgen_sent "$NP_K1")))
        sleep 0.5
        nc_i=$((nc_i + 1))
    done
    np_do tp_cmd stop
    nc_rx_back0=$(net_delta "$NP_K0" /tmp/k0.snap rx_packets)
    nc_rx_back1=$(net_delta "$NP_K1" /tmp/k1.snap rx_packets)
    # txonly: A -> K0, B -> K1: NP_BURSTS rounds of `start tx_first` (a
    # burst of 32 of txonly's frames from each port, then rxonly) and stop.
    net_snap "$NP_K0" /tmp/k0.snap
    net_snap "$NP_K1" /tmp/k1.snap
    nc_i=0
    while [ $nc_i -lt $nc_bursts ]; do
        np_do tp_cmd start tx_first
        np_do tp_cmd stop
        nc_i=$((nc_i + 1))
    done
    [ $NP_OK = yes ] && nc_tx_got0=$(net_rx_settled "$NP_K0" /tmp/k0.snap $((nc_bursts * 32))) &&
        nc_tx_got1=$(net_rx_settled "$NP_K1" /tmp/k1.snap $((nc_bursts * 32)))
    # io: K0 -> A -> B -> K1 and K1 -> B -> A -> K0, at once. The
    # destination addresses are no host's: the peers count and drop them.
    net_snap "$NP_K0" /tmp/k0.snap
    net_snap "$NP_K1" /tmp/k1.snap
    np_do tp_cmd set fwd io
    np_do tp_cmd start
    nc_io_sent0=0 nc_io_sent1=0 nc_i=0
    while [ $nc_i -lt $nc_rounds ] && np_do np_pktgen "$NP_K0" "$NP_K1_MAC" 198.18.11.99 "$NP_K1" "$NP_K0_MAC" 198.18.10.99; do
        nc_io_sent0=$((nc_io_sent0 + $(pktgen_sent "$NP_K0"))) nc_io_sent1=$((nc_io_sent1 + $(pktgen_sent "$NP_K1")))
        # The peers drain their rings before the next round (see NP_ROUND).
        wait_for 10 net_rx_reached "$NP_K1" /tmp/k1.snap $nc_io_sent0
        wait_for 10 net_rx_reached "$NP_K0" /tmp/k0.snap $nc_io_sent1
        nc_i=$((nc_i + 1))
    done
    [ $NP_OK = yes ] && nc_io_got1=$(net_rx_settled "$NP_K1" /tmp/k1.snap $nc_io_sent0) &&
        nc_io_got0=$(net_rx_settled "$NP_K0" /tmp/k0.snap $nc_io_sent1)
    np_do tp_cmd stop
    np_do tp_cmd show port stats all
    nc_cmds=$NP_OK
    tp_close
    net_e1000_stats_fresh
    echo "---- $nc_prog on port 0 = $NP_A (hub 0, peer $NP_K0), port 1 = $NP_B (hub 1, peer $NP_K1)"
    check "$nc_prog took every command and quit" test "$nc_cmds" = yes
    check "$nc_prog exited 0 (exit $TP_RC)" test "$TP_RC" -eq 0
    [ -n "$nc_dpdk" ] && np_dpdk_checks "$TP_LOG" "$nc_dpdk"
    # rxonly
    nc_a=$(tp_fwd "$TP_LOG" 1 0 RX-packets) nc_b=$(tp_fwd "$TP_LOG" 1 1 RX-packets)
    echo "net rxonly: pktgen $NP_K0 sent ${nc_rx_sent0:-?}, port 0 RX-packets ${nc_a:-?}; pktgen $NP_K1 sent ${nc_rx_sent1:-?}, port 1 RX-packets ${nc_b:-?}"
    check "pktgen on $NP_K0 sent $nc_frames (${nc_rx_sent0:-none})" test "${nc_rx_sent0:-0}" -eq $nc_frames
    check "pktgen on $NP_K1 sent $nc_frames (${nc_rx_sent1:-none})" test "${nc_rx_sent1:-0}" -eq $nc_frames
    check "rxonly port 0 RX-packets (${nc_a:-none}) = what $NP_K0 sent" test "${nc_a:--1}" -eq "${nc_rx_sent0:-0}"
    check "rxonly port 1 RX-packets (${nc_b:-none}) = what $NP_K1 sent" test "${nc_b:--1}" -eq "${nc_rx_sent1:-0}"
    for nc_p in 0 1; do
        nc_v=$(tp_fwd "$TP_LOG" 1 $nc_p RX-dropped)
        check "rxonly port $nc_p RX-dropped 0 (${nc_v:-none})" test "${nc_v:--1}" -eq 0
    done
    check "rxonly: nothing came back to the peers ($nc_rx_back0, $nc_rx_back1)" \
        test "$nc_rx_back0" -eq 0 -a "$nc_rx_back1" -eq 0
    # txonly: stops 2 .. nc_bursts + 1
    nc_a=0 nc_b=0 nc_i=2
    while [ $nc_i -le $((nc_bursts + 1)) ]; do
        nc_a=$((nc_a + $(tp_fwd "$TP_LOG" $nc_i 0 TX-packets | grep . || echo -1000000)))
        nc_b=$((nc_b + $(tp_fwd "$TP_LOG" $nc_i 1 TX-packets | grep . || echo -1000000)))
        nc_i=$((nc_i + 1))
    done
    echo "net txonly: port 0 TX-packets ${nc_a:-?}, $NP_K0 rx_packets +${nc_tx_got0:-?}; port 1 TX-packets ${nc_b:-?}, $NP_K1 rx_packets +${nc_tx_got1:-?}"
    check "txonly port 0 sent its $nc_bursts bursts (TX-packets ${nc_a:-none})" test "${nc_a:--1}" -eq $((nc_bursts * 32))
    check "txonly port 1 sent its $nc_bursts bursts (TX-packets ${nc_b:-none})" test "${nc_b:--1}" -eq $((nc_bursts * 32))
    check "$NP_K0 rx_packets grew by port 0's TX-packets (+${nc_tx_got0:-none})" test "${nc_tx_got0:--1}" -eq "${nc_a:--2}"
    check "$NP_K1 rx_packets grew by port 1's TX-packets (+${nc_tx_got1:-none})" test "${nc_tx_got1:--1}" -eq "${nc_b:--2}"
    # io: the last stop
    nc_s=$((nc_bursts + 2))
    nc_a=$(tp_fwd "$TP_LOG" $nc_s 0 RX-packets) nc_b=$(tp_fwd "$TP_LOG" $nc_s 1 TX-packets)
    echo "net io: pktgen $NP_K0 sent ${nc_io_sent0:-?}, port 0 RX-packets ${nc_a:-?}, port 1 TX-packets ${nc_b:-?}, $NP_K1 rx_packets +${nc_io_got1:-?}"
    check "pktgen on $NP_K0 sent $nc_frames (${nc_io_sent0:-none})" test "${nc_io_sent0:-0}" -eq $nc_frames
    check "io port 0 RX-packets (${nc_a:-none}) = what $NP_K0 sent" test "${nc_a:--1}" -eq "${nc_io_sent0:-0}"
    check "io port 1 TX-packets (${nc_b:-none}) = what port 0 received" test "${nc_b:--1}" -eq "${nc_a:--2}"
    check "$NP_K1 rx_packets grew by what $NP_K0 sent (+${nc_io_got1:-none})" test "${nc_io_got1:--1}" -eq "${nc_io_sent0:-0}"
    nc_a=$(tp_fwd "$TP_LOG" $nc_s 1 RX-packets) nc_b=$(tp_fwd "$TP_LOG" $nc_s 0 TX-packets)
    echo "net io: pktgen $NP_K1 sent ${nc_io_sent1:-?}, port 1 RX-packets ${nc_a:-?}, port 0 TX-packets ${nc_b:-?}, $NP_K0 rx_packets +${nc_io_got0:-?}"
    check "pktgen on $NP_K1 sent $nc_frames (${nc_io_sent1:-none})" test "${nc_io_sent1:-0}" -eq $nc_frames
    check "io port 1 RX-packets (${nc_a:-none}) = what $NP_K1 sent" test "${nc_a:--1}" -eq "${nc_io_sent1:-0}"
    check "io port 0 TX-packets (${nc_b:-none}) = what port 1 received" test "${nc_b:--1}" -eq "${nc_a:--2}"
    check "$NP_K0 rx_packets grew by what $NP_K1 sent (+${nc_io_got0:-none})" test "${nc_io_got0:--1}" -eq "${nc_io_sent1:-0}"
    for nc_p in 0 1; do
        for nc_f in TX-dropped RX-dropped; do
            nc_v=$(tp_fwd "$TP_LOG" $nc_s $nc_p $nc_f)
            check "io port $nc_p $nc_f 0 (${nc_v:-none})" test "${nc_v:--1}" -eq 0
        done
    done
    # The whole session, from the ports' and the peers' own counters.
    for nc_p in 0 1; do
        for nc_f in RX-errors RX-missed TX-errors; do
            nc_v=$(tp_nic "$TP_LOG" $nc_p $nc_f)
            check "port $nc_p $nc_f 0 over the session (${nc_v:-none})" test "${nc_v:--1}" -eq 0
        done
    done
    for nc_k in "$NP_K0 /tmp/k0.start" "$NP_K1 /tmp/k1.start"; do
        set -- $nc_k
        for nc_c in $NET_RX_COUNTERS; do
            [ $nc_c = rx_packets ] && continue
            nc_v=$(net_delta "$1" "$2" $nc_c)
            check "$1 $nc_c did not grow (+$nc_v)" test "$nc_v" -eq 0
        done
    done
    checks_done
}

# net_icmpecho PROG NAME [DPDK_MODE]: a step; PROG in icmpecho on A alone,
# then on B alone (a single port answers on itself), while busybox ping on
# the hub's peer sends NP_PINGS echo requests through the kernel's stack:
# every one is answered, and the port answered every frame it got (the
# peer's ARP requests and pings).
net_icmpecho() {
    ni_prog=$1 ni_name=$2 ni_dpdk=${3:-}
    for ni_side in "$NP_A $NP_K0 198.18.10.2" "$NP_B $NP_K1 198.18.11.2"; do
        set -- $ni_side
        NP_OK=yes
        np_do tp_open "$ni_prog" "$ni_name-$1" "$1"
        np_do tp_cmd set fwd icmpecho
        np_do tp_cmd start
        ni_got=0
        # The peer forgets the port's MAC, so that the port answers its ARP
        # request first.
        ip neigh flush dev "$2"
        [ $NP_OK = yes ] && ni_got=$(ping_replies "$2" "$3" $NP_PINGS | tee /tmp/ping.show | tail -1)
        np_do tp_cmd stop
        ni_cmds=$NP_OK
        tp_close
        sed '$d' /tmp/ping.show 2>/dev/null
        ni_rx=$(tp_fwd "$TP_LOG" 1 0 RX-packets) ni_tx=$(tp_fwd "$TP_LOG" 1 0 TX-packets)
        echo "net icmpecho: $2 ping $3 ($1): $ni_got of $NP_PINGS replies; port RX-packets ${ni_rx:-?}, TX-packets ${ni_tx:-?}"
        check "$ni_prog on $1 took every command and quit" test "$ni_cmds" = yes
        check "$ni_prog exited 0 (exit $TP_RC)" test "$TP_RC" -eq 0
        [ -n "$ni_dpdk" ] && check "DPDK's VFIO uses $ni_dpdk" \
            grep -q "IOMMU type [0-9]* ($ni_dpdk)" "$TP_LOG"
        check "every ping from $2 to $3 answered ($ni_got of $NP_PINGS)" test "$ni_got" -eq $NP_PINGS
        check "the port got the pings and the ARP request (RX-packets ${ni_rx:-none})" test "${ni_rx:-0}" -gt $NP_PINGS
        check "the port answered every frame (TX-packets ${ni_tx:-none} = RX-packets)" test "${ni_tx:--1}" -eq "${ni_rx:--2}"
    done
    checks_done
}

# net_peers_dpdk MODE: steps net-dpdk-VERSION-counts and -icmpecho with the
# newest DPDK in the guest, whose EAL must use IOMMU type MODE: the peer
# machinery checked against DPDK's own testpmd.
net_peers_dpdk() {
    npd_v=$(dpdk_newest 2>/tmp/dpdk-newest) || {
        run net-dpdk sh -c 'cat /tmp/dpdk-newest; exit 1'
        return 1
    }
    npd_rc=0
    run "net-dpdk-$npd_v-counts" net_counts "dpdk-testpmd-$npd_v" "dpdk-$npd_v" "$1" || npd_rc=1
    run "net-dpdk-$npd_v-icmpecho" net_icmpecho "dpdk-testpmd-$npd_v" "dpdk-$npd_v-ping" "$1" || npd_rc=1
    return $npd_rc
}

# net_counts_by_mode PROG NAME: net_counts for each_mode, whose modes run
# in the mode table's order: the first mode it runs gets the full session,
# every later one the smoke session (NP_SMOKE_ROUNDS pktgen rounds a
# stream, NP_SMOKE_BURSTS txonly bursts): the same checks on fewer frames.
# Above the VFIO layer the packet path is the same in every mode; what a
# mode changes (container, IOMMU mappings of the rings and mbufs, DMA
# through them) a round of each stream exercises as well as five.
net_counts_by_mode() {
    if [ -e /tmp/np-full-done ]; then
        NP_SESSION=smoke net_counts "$@"
    else
        : > /tmp/np-full-done
        NP_SESSION=full net_counts "$@"
    fi
}

# net_peers_vfiokit: vfiokit-testpmd against the same peers: net_counts
# once per VFIO mode the shape offers A (steps net-counts-MODE; the mode
# decides how the NICs' DMA is translated), and net_icmpecho in the mode
# 'auto' picks (step net-icmpecho).
net_peers_vfiokit() {
    if ! command -v vfiokit-testpmd > /dev/null; then
        skip net-vfiokit "vfiokit-testpmd is not in this guest (lab.py --bin)"
        return 0
    fi
    npv_rc=0
    rm -f /tmp/np-full-done
    each_mode net-counts "$NP_A" net_counts_by_mode vfiokit-testpmd vfiokit || npv_rc=1
    run net-icmpecho net_icmpecho vfiokit-testpmd vfiokit-ping || npv_rc=1
    return $npv_rc
}

# net_l2fwd PROG: a step; PROG (examples/l2fwd, built out of tree against
# the installed library) forwards between A and B in the mode 'auto' picks,
# while one pktgen round from K0 to K1's MAC and one from K1 to K0's go
# through it at once. Each peer's rx_packets grows by what the other sent,
# and l2fwd's own counts, printed at SIGINT, agree: port 0 received what K0
# sent and port 1 sent it on, and the reverse, nothing dropped.
net_l2fwd() {
    nl_log=/tmp/l2fwd.log
    net_snap "$NP_K0" /tmp/k0.snap
    net_snap "$NP_K1" /tmp/k1.snap
    "$1" -l 0 -a "$NP_A" -a "$NP_B" > $nl_log 2>&1 &
    nl_pid=$!
    nl_sent0= nl_sent1= nl_got0= nl_got1= nl_maps=
    if wait_for 60 grep -q '^l2fwd: forwarding' $nl_log; then
        nl_maps=$(grep -o '[^ ]*libvfiokit[^ ]*' /proc/$nl_pid/maps | sort -u | xargs)
        if np_pktgen "$NP_K0" "$NP_K1_MAC" 198.18.11.99 "$NP_K1" "$NP_K0_MAC" 198.18.10.99; then
            nl_sent0=$(pktgen_sent "$NP_K0") nl_sent1=$(pktgen_sent "$NP_K1")
            nl_got1=$(net_rx_settled "$NP_K1" /tmp/k1.snap "$nl_sent0")
            nl_got0=$(net_rx_settled "$NP_K0" /tmp/k0.snap "$nl_sent1")
        fi
    else
        echo "$1 did not start forwarding within 60 s"
    fi
    kill -INT $nl_pid 2>/dev/null
    nl_n=150
    while kill -0 $nl_pid 2>/dev/null && [ $nl_n -gt 0 ]; do
        sleep 0.2
        nl_n=$((nl_n - 1))
    done
    kill -0 $nl_pid 2>/dev/null && { echo "$1 did not stop within 30 s of SIGINT: killed"; kill -9 $nl_pid; }
    wait $nl_pid
    nl_rc=$?
    cat $nl_log
    # Port P's "Packets sent/received/dropped" in the statistics at exit.
    nl_stat() {
        awk -v p="$1" -v f="$2" '/^Statistics for port/ { cur = $4 }
            cur == p && index($0, "Packets " f ":") == 1 { print $3 }' $nl_log
    }
    echo "---- $1: pktgen $NP_K0 sent ${nl_sent0:-?} via port 0 -> port 1 to $NP_K1 (+${nl_got1:-?}); $NP_K1 sent ${nl_sent1:-?} via port 1 -> port 0 to $NP_K0 (+${nl_got0:-?})"
    check "$1 exited 0 after SIGINT (exit $nl_rc)" test $nl_rc -eq 0
    check "$1 runs on the installed libvfiokit.so.0 (${nl_maps:-not mapped})" \
        sh -c "echo '$nl_maps' | grep -q '/libvfiokit.so.0'"
    check "pktgen on $NP_K0 and $NP_K1 sent a round each (${nl_sent0:-none}, ${nl_sent1:-none})" \
        test "${nl_sent0:-0}" -eq $NP_ROUND -a "${nl_sent1:-0}" -eq $NP_ROUND
    check "$NP_K1 rx_packets grew by what $NP_K0 sent (+${nl_got1:-none})" test "${nl_got1:--1}" -eq "${nl_sent0:-0}"
    check "$NP_K0 rx_packets grew by what $NP_K1 sent (+${nl_got0:-none})" test "${nl_got0:--1}" -eq "${nl_sent1:-0}"
    check "port 0 received what $NP_K0 sent ($(nl_stat 0 received))" test "$(nl_stat 0 received)" = "$nl_sent0"
    check "port 1 sent it on ($(nl_stat 1 sent))" test "$(nl_stat 1 sent)" = "$nl_sent0"
    check "port 1 received what $NP_K1 sent ($(nl_stat 1 received))" test "$(nl_stat 1 received)" = "$nl_sent1"
    check "port 0 sent it on ($(nl_stat 0 sent))" test "$(nl_stat 0 sent)" = "$nl_sent1"
    check "nothing dropped ($(nl_stat 0 dropped), $(nl_stat 1 dropped))" \
        test "$(nl_stat 0 dropped)" = 0 -a "$(nl_stat 1 dropped)" = 0
    checks_done
}

# --- The virtio-net PMD (tests/lab/virtio) ------------------------------------
# A virtio-net's kernel netdev hangs under its virtio device
# (/sys/bus/pci/devices/BDF/virtioN/net/DEV), not under the PCI device.

# virtio_net_mac BDF: the MAC address the kernel's virtio_net shows for the
# virtio-net at BDF (empty when it has none).
virtio_net_mac() {
    cat /sys/bus/pci/devices/"$1"/virtio*/net/*/address 2>/dev/null | head -1
}

# virtio_lab VIRTIO PEER DRIVER HUBPORT: the virtio-net PMD's lab test on
# VIRTIO once per VFIO mode (steps virtio-MODE), after step virtio-setup: the
# address the kernel's virtio_net read is noted, PEER (a NIC on the same QEMU
# hub) is given back to its kernel DRIVER and comes up with 198.18.20.1/24,
# and VIRTIO goes to vfio-pci. The test answers ping for 198.18.20.2 and has
# the host set the link of VIRTIO's hub port HUBPORT (lab.py's hpN) through
# the action channel (fd 4).
virtio_lab() {
    VFIOKIT_VIRTIO_KERNEL_MAC=$(virtio_net_mac "$1")
    export VFIOKIT_VIRTIO=$1 VFIOKIT_VIRTIO_PEER=$2 VFIOKIT_VIRTIO_KERNEL_MAC
    export VFIOKIT_VIRTIO_HUBPORT=$4 VFIOKIT_ACTION_FD=4
    export VFIOKIT_VIRTIO_PEER_IP=198.18.20.1 VFIOKIT_VIRTIO_IP=198.18.20.2
    run virtio-setup virtio_setup "$@" || return 1
    each_mode virtio "$1" virtio_lab_test --gtest_filter='Lab/*'
}

virtio_setup() {
    check "the kernel's virtio_net had $1 (${VFIOKIT_VIRTIO_KERNEL_MAC:-no netdev})" \
        test -n "$VFIOKIT_VIRTIO_KERNEL_MAC"
    vs_drv=$(basename "$(readlink "/sys/bus/pci/devices/$2/driver" 2>/dev/null)" 2>/dev/null)
    [ "$vs_drv" = "$3" ] || driver_bind "$2" "$3"
    check "peer $2 on the kernel's $3" test -e "/sys/bus/pci/drivers/$3/$2"
    net_up "$2" 198.18.20.1/24
    check "peer $2 ($(net_dev "$2")) up with 198.18.20.1/24 and carrier" carrier_is "$(net_dev "$2")" 1
    vfio_bind "$1"
    check "$1 on vfio-pci" test -e "/sys/bus/pci/drivers/vfio-pci/$1"
    checks_done
}

# tp_forward_step PROG BDF...: a step; PROG (vfiokit-testpmd) takes the
# devices and io-forwards for 3 s after a first burst from each port
# (`start tx_first`), as dpdk_forward does with DPDK's testpmd: it took
# every command, exited 0, and every port received packets.
tp_forward_step() {
    tf_prog=$1
    shift
    NP_OK=yes
    np_do tp_open "$tf_prog" forward "$@"
    np_do tp_cmd start tx_first
    sleep 3
    np_do tp_cmd stop
    tf_cmds=$NP_OK
    tp_close
    echo "---- $tf_prog ($VFIOKIT_VFIO_MODE) on $*"
    check "$tf_prog took start tx_first, stop, quit" test "$tf_cmds" = yes
    check "$tf_prog exited 0 (exit $TP_RC)" test "$TP_RC" -eq 0
    tf_port=0
    for tf_b; do
        tf_rx=$(tp_fwd "$TP_LOG" 1 $tf_port RX-packets)
        check "port $tf_port ($tf_b) received packets (RX-packets ${tf_rx:-none})" \
            test "${tf_rx:-0}" -gt 0
        tf_port=$((tf_port + 1))
    done
    checks_done
}

# --- vDPA: vfiokit-vdpa and a testpmd front end on its socket ---------------
# vfiokit-vdpa serves one vDPA device at ${VD_SOCK}0; DPDK's testpmd is the
# front end there (virtio_user, --no-pci), its memory a memfd (--no-huge)
# that the device reaches through its own container at testpmd's virtual
# addresses.
VD_SOCK=/tmp/vdpa-
VD_LOG=/tmp/vdpa.log

# vd_start BDF: vfiokit-vdpa on BDF in the background (VD_PID, output in
# VD_LOG); waits (60 s at most) until it listens at ${VD_SOCK}0, or exits.
# Non-zero, saying which, when it does not listen.
vd_start() {
    rm -f "${VD_SOCK}0"
    vfiokit-vdpa -a "$1" -- --iface "$VD_SOCK" > "$VD_LOG" 2>&1 &
    VD_PID=$!
    wait_for 60 vd_listening_or_gone
    grep -q "at ${VD_SOCK}0$" "$VD_LOG" ||
        { echo "vfiokit-vdpa does not listen at ${VD_SOCK}0:"; cat "$VD_LOG"; return 1; }
}
vd_listening_or_gone() {
    grep -q "at ${VD_SOCK}0$" "$VD_LOG" || ! kill -0 "$VD_PID"
}

# vd_stop: SIGTERM to vfiokit-vdpa, wait (20 s, then kill); VD_RC is its
# exit status.
vd_stop() {
    kill -TERM "$VD_PID" 2>/dev/null
    vs_n=100
    while kill -0 "$VD_PID" 2>/dev/null && [ $vs_n -gt 0 ]; do
        sleep 0.2
        vs_n=$((vs_n - 1))
    done
    kill -0 "$VD_PID" 2>/dev/null && { echo "vfiokit-vdpa did not stop within 20 s: killed"; kill -9 "$VD_PID"; }
    wait "$VD_PID"
    VD_RC=$?
}

# vd_cpu: vfiokit-vdpa's CPU time so far (utime + stime, in clock ticks:
# USER_HZ, 100 a second).
vd_cpu() {
    awk '{ print $14 + $15 }' "/proc/$VD_PID/stat"
}

# vd_threads: each thread of vfiokit-vdpa with its CPU ticks so far, on
# one line ("vdpa-relay 3 vdpa-serve 1 ...").
vd_threads() {
    for vt_t in /proc/"$VD_PID"/task/*; do
        awk '{ sub(/^[0-9]+ \(/, ""); n = $0; sub(/\).*/, "", n); sub(/^[^)]*\) /, ""); print n, $12 + $13 }' "$vt_t/stat"
    done | xargs
}

# vd_usr1: vfiokit-vdpa prints its statistics (SIGUSR1); waits for the line.
vd_usr1() {
    vu_n=$(grep -c '^vdpa stats' "$VD_LOG")
    kill -USR1 "$VD_PID" && wait_for 5 vd_stats_more "$vu_n"
}
vd_stats_more() { [ "$(grep -c '^vdpa stats' "$VD_LOG")" -gt "$1" ]; }

# vd_stat FIELD: FIELD (tx_used, rx_used, kicks, front_ends, mapped_bytes,
# ...) of vfiokit-vdpa's last statistics line.
vd_stat() {
    grep '^vdpa stats' "$VD_LOG" | tail -1 |
        awk -v f="$1" '{ for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }'
}

# vd_open VERSION NAME [EAL-ARGS...] [-- APP-ARGS...]: DPDK VERSION's
# testpmd, interactive, as the front end of ${VD_SOCK}0 (MAC VD_MAC when
# set), in a tp_* session (tp_cmd, tp_close, TP_LOG); waits for its prompt.
vd_open() {
    TP_PROG=dpdk-testpmd-$1 TP_LOG=/tmp/tp-$2.log
    shift 2
    vo_eal="-l 0-1 -n 1 --no-pci --no-huge -m 128 --no-shconf"
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        vo_eal="$vo_eal $1"
        shift
    done
    [ "${1:-}" = -- ] && shift
    : > /tmp/tp.cmds
    rm -f /tmp/tp.in && mkfifo /tmp/tp.in
    # shellcheck disable=SC2086
    "$TP_PROG" $vo_eal --vdev "net_virtio_user0,path=${VD_SOCK}0,queues=1,queue_size=256${VD_MAC:+,mac=$VD_MAC}" \
        -- -i --rxd=256 --txd=256 --burst=32 --total-num-mbufs=2048 "$@" \
        < /tmp/tp.in > "$TP_LOG" 2>&1 &
    TP_PID=$!
    exec 6> /tmp/tp.in
    TP_PROMPTS=1
    dpdk_prompts $TP_PID "$TP_LOG" 1 ||
        { echo "$TP_PROG gave no prompt (exited, or 120 s passed)"; cat "$TP_LOG"; return 1; }
}

# net_rx_quiet DEV: wait (10 s at most) until DEV's rx_packets stays the
# same for a second: frames QEMU still held for it have arrived.
net_rx_quiet() {
    nq_n=10
    nq_was=$(net_stat "$1" rx_packets)
    while [ $nq_n -gt 0 ]; do
        sleep 1
        nq_now=$(net_stat "$1" rx_packets)
        [ "$nq_now" = "$nq_was" ] && return 0
        nq_was=$nq_now
        nq_n=$((nq_n - 1))
    done
    return 1
}

# vd_refuses_noiommu BDF: a step; vfiokit-vdpa on a device in no-IOMMU mode
# exits 1 saying vDPA needs translation, and serves nothing.
vd_refuses_noiommu() {
    vfio_bind "$1" || return 1
    rm -f "${VD_SOCK}0"
    vfiokit-vdpa -a "$1" -- --iface "$VD_SOCK" > "$VD_LOG" 2>&1 < /dev/null
    vr_rc=$?
    cat "$VD_LOG"
    check "vfiokit-vdpa exits 1 (exit $vr_rc)" test $vr_rc -eq 1
    check "it says why: vDPA needs translation" grep -q \
        "vDPA needs translation: no-IOMMU mode cannot map the front end's guest-physical addresses" "$VD_LOG"
    check "it names the device and the driver" grep -q "vdpa_virtio $1" "$VD_LOG"
    check "no socket was made" test ! -e "${VD_SOCK}0"
    checks_done
}

# vd_refuses_width BDF: a step; on an IOMMU narrower than the front end's
# addresses (the iommu shape's 39 bits), vfiokit-vdpa takes the device but
# refuses the front end's memory table, naming the width, the address and
# the fix, and maps nothing. testpmd's memory is placed above 2^39
# (--base-virtaddr), where a process's mmap()s land by default; without it
# DPDK reserves from 4 GiB up (shown, for the record).
vd_refuses_width() {
    vw_v=$(dpdk_newest) || { echo "no DPDK runs here"; return 1; }
    vfio_bind "$1" || return 1
    vd_start "$1" || return 1
    # shellcheck disable=SC2086
    timeout 120 "dpdk-testpmd-$vw_v" -l 0-1 -n 1 --no-pci --no-huge -m 64 --no-shconf \
        --base-virtaddr=0x7f0000000000 \
        --vdev "net_virtio_user0,path=${VD_SOCK}0,queues=1" -- -i --total-num-mbufs=2048 \
        < /dev/null > /tmp/tp-width.log 2>&1
    vw_rc=$?
    vd_stop
    tail -20 /tmp/tp-width.log
    echo "----"
    cat "$VD_LOG"
    check "vfiokit-vdpa took the device ($1)" grep -q "vdpa device $1" "$VD_LOG"
    check "the front end connected" grep -q "front end 1 connected" "$VD_LOG"
    check "its table was refused, naming the 39-bit width" \
        grep -q "does not fit the IOMMU's 39-bit IOVA space" "$VD_LOG"
    check "... the bits the address needs" grep -q "needs 47 bits" "$VD_LOG"
    check "... and the fix (aw-bits=48)" grep -q "aw-bits=48" "$VD_LOG"
    check "the front end heard the refusal (NACK to SET_MEM_TABLE)" \
        grep -q "replied NACK to request type (5)" /tmp/tp-width.log
    check "nothing was mapped (maps 0, mapped_bytes 0)" \
        test "$(vd_stat maps) $(vd_stat mapped_bytes)" = "0 0"
    check "the device never started (starts 0)" test "$(vd_stat starts)" = 0
    check "vfiokit-vdpa exited 0 on SIGTERM (exit $VD_RC)" test "$VD_RC" -eq 0
    checks_done
}
