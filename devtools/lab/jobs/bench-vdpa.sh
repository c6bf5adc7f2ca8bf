# The vDPA benchmark (devtools/bench-vdpa.sh, doc/benchmarks.md): one front
# end, one device, one guest, two back ends in interleaved rounds:
#   vdpa:  vfiokit-vdpa serves the front end with the virtio-net at 00:06.0
#          (modern shape): the device DMAs the front end's memory itself;
#   relay: DPDK's own software path: testpmd with the vhost-user PMD
#          (--vdev net_vhost0, the front end's socket) io-forwarding to
#          DPDK's virtio PMD on the same device; a core copies every packet.
# The front end is DPDK's testpmd (virtio_user, --no-pci, --no-huge) on
# lcore 1; the relay forwards on lcore 0. A benchmark, not a test: a step
# fails only when something could not be run, never on a number.
#
# devtools/bench-vdpa.sh puts these lines before this one:
#   BENCH_DPDK=VERSION  a DPDK with net_vhost (Debian 12's 22.11)
#   BENCH_ROUNDS=N  BENCH_SECS=S  rounds, and the seconds of each window
#
# Per round and back end, one front-end session: txonly (the front end's
# TX-packets to the e1000e 00:05.0 on the kernel's driver; txout is the
# part the device took: all of it with vdpa, the relay's delivered share
# of its forwards to the device, from its exit statistics), then rxonly
# while the kernel's pktgen on that e1000e sends to the device without
# pause (the front end's RX-packets). Each figure is a counter delta over
# a window of BENCH_SECS seconds between two `show port stats all`, after a
# one-second warm-up. CPU per packet is the back end's utime+stime
# (/proc/PID/stat) over the window divided by the packets. Odd rounds run
# vdpa first, even rounds the relay first.
export VFIOKIT_LAB_SHAPE=modern
BENCH_DPDK=${BENCH_DPDK:-22.11}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECS=${BENCH_SECS:-4}
BV_DEV=0000:00:06.0
BV_K0=0000:00:05.0
BV_RES=/tmp/bv.results
: > $BV_RES

bv_now() { cut -d' ' -f1 /proc/uptime; }
bv_cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bv_cmd COMMAND...: tp_cmd with a 20 ms wait for the prompt (the window's
# ends are timed around it).
bv_cmd() {
    kill -0 $TP_PID 2>/dev/null || { echo "$TP_PROG is gone before '$*'"; return 1; }
    echo "$*" >&6 || return 1
    echo "$*" >> /tmp/tp.cmds
    TP_PROMPTS=$((TP_PROMPTS + 1))
    bc_n=3000
    while [ "$(grep -o "testpmd> " "$TP_LOG" | wc -l)" -lt $TP_PROMPTS ]; do
        kill -0 $TP_PID 2>/dev/null && [ $bc_n -gt 0 ] || { echo "$TP_PROG: no prompt after '$*'"; return 1; }
        sleep 0.02
        bc_n=$((bc_n - 1))
    done
}

# bv_window BACKEND_PID: after a second, two timed `show port stats all`
# BENCH_SECS apart; sets BV_T (s), BV_CPU (the back end's ticks), BV_N (the
# second show's number).
bv_window() {
    sleep 1
    bw_t0=$(bv_now)
    bv_cmd show port stats all || return 1
    bw_t1=$(bv_now) bw_c0=$(bv_cpu "$1")
    sleep "$BENCH_SECS"
    bw_t2=$(bv_now)
    bv_cmd show port stats all || return 1
    bw_t3=$(bv_now) bw_c1=$(bv_cpu "$1")
    BV_SHOWS=$((BV_SHOWS + 2)) BV_N=$((BV_SHOWS))
    BV_T=$(awk -v a="$bw_t0" -v b="$bw_t1" -v c="$bw_t2" -v d="$bw_t3" 'BEGIN { printf "%.3f", (c + d - a - b) / 2 }')
    BV_CPU=$((bw_c1 - bw_c0))
}

# bv_stat N FIELD: port 0's FIELD in the N-th `show port stats all`.
bv_stat() {
    awk -v n="$1" -v f="$2:" '
        /NIC statistics for port 0/ { seen++; cur = 1; next }
        /^ *#####/ { cur = 0; next }
        cur && seen == n { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }' "$TP_LOG"
}
bv_delta() { echo $(( $(bv_stat "$1" "$2") - $(bv_stat $(($1 - 1)) "$2") )); }

bv_pktgen_start() {
    pktgen_reset && pktgen_add "$BV_K0_DEV" 0 "$BV_MAC" 198.18.10.2 || return 1
    pktgen_run &
    BV_PG=$!
    wait_for 10 bv_pktgen_going || { echo "pktgen sends nothing"; return 1; }
}
bv_pktgen_going() { [ "$(pktgen_sent "$BV_K0_DEV")" -gt 0 ]; }
bv_pktgen_stop() {
    echo stop > /proc/net/pktgen/pgctrl
    [ -n "${BV_PG:-}" ] && wait "$BV_PG" 2>/dev/null
    BV_PG=
    pktgen_reset
}

# The back ends: bv_start_NAME sets BV_PID and serves ${VD_SOCK}0;
# bv_stop_NAME ends it.
bv_start_vdpa() {
    vd_start $BV_DEV || return 1
    BV_PID=$VD_PID
}
bv_stop_vdpa() {
    BV_TAKEN=1  # the device takes every frame off the front end's ring itself
    vd_stop
    [ "$VD_RC" -eq 0 ] || { cat "$VD_LOG"; return 1; }
}
bv_start_relay() {
    rm -f "${VD_SOCK}0" /tmp/relay.in && mkfifo /tmp/relay.in
    # Forwarding on lcore 0 (the front end forwards on lcore 1); without
    # -i testpmd forwards at once and ends on Enter.
    "dpdk-testpmd-$BENCH_DPDK" -l 0-1 --main-lcore 1 -n 1 --in-memory -a $BV_DEV \
        --vdev "net_vhost0,iface=${VD_SOCK}0,queues=1" -- \
        --forward-mode=io --auto-start --nb-cores=1 --rxd=256 --txd=256 --burst=32 \
        --total-num-mbufs=4096 < /tmp/relay.in > /tmp/relay.log 2>&1 &
    BV_PID=$!
    exec 7> /tmp/relay.in
    wait_for 60 test -S "${VD_SOCK}0" || { echo "the relay does not listen:"; cat /tmp/relay.log; return 1; }
}
bv_stop_relay() {
    echo >&7
    exec 7>&-
    br_n=100
    while kill -0 $BV_PID 2>/dev/null && [ $br_n -gt 0 ]; do sleep 0.2; br_n=$((br_n - 1)); done
    kill -0 $BV_PID 2>/dev/null && { echo "the relay did not end: killed"; kill -9 $BV_PID; }
    wait $BV_PID
    br_rc=$?
    [ $br_rc -eq 0 ] || { echo "relay exit $br_rc"; cat /tmp/relay.log; return 1; }
    # What the device took of what the relay forwarded to it, over the
    # session: its port's TX-packets against TX-packets + TX-dropped (the
    # relay drops what the device's ring cannot take). Only the txonly
    # phase sends that way.
    br_port=$(sed -n 's/^Port \([0-9]*\): \([0-9A-Fa-f:]*\)$/\1 \2/p' /tmp/relay.log |
        awk -v m="$BV_MAC" 'tolower($2) == tolower(m) { print $1; exit }')
    br_tx=$(tp_fwd /tmp/relay.log 1 "$br_port" TX-packets)
    br_drop=$(tp_fwd /tmp/relay.log 1 "$br_port" TX-dropped)
    echo "relay: the device's port $br_port took $br_tx frames, the relay dropped $br_drop it could not give it"
    BV_TAKEN=$(awk -v t="${br_tx:-0}" -v d="${br_drop:-0}" 'BEGIN { printf "%.4f", (t + d > 0 ? t / (t + d) : 0) }')
}

# bv_session ROUND NAME: the back end NAME, a front end on it, the two windows.
bv_session() {
    bs_r=$1 bs_b=$2
    "bv_start_$bs_b" || return 1
    BV_SHOWS=0
    bs_ok=yes
    vd_open "$BENCH_DPDK" "bv-$bs_b" -- --eth-peer=0,"$BV_K0_MAC" --txpkts=64 --nb-cores=1 || bs_ok=no
    if [ $bs_ok = yes ]; then
        { bv_cmd set fwd txonly && bv_cmd start && bv_window $BV_PID && bv_cmd stop; } || bs_ok=no
        bs_tx_n=$BV_N bs_tx_t=$BV_T bs_tx_cpu=$BV_CPU
    fi
    if [ $bs_ok = yes ]; then
        pg0=0 pg1=0
        { bv_cmd set fwd rxonly && bv_cmd start && bv_pktgen_start &&
            pg0=$(pktgen_sent "$BV_K0_DEV") && bv_window $BV_PID && pg1=$(pktgen_sent "$BV_K0_DEV"); } || bs_ok=no
        bv_pktgen_stop
        bv_cmd stop || bs_ok=no
        bs_rx_n=$BV_N bs_rx_t=$BV_T bs_rx_cpu=$BV_CPU
    fi
    tp_close > /dev/null
    "bv_stop_$bs_b" || bs_ok=no
    echo "---- $bs_b, round $bs_r: front end exit $TP_RC"
    if [ $bs_ok != yes ] || [ "$TP_RC" -ne 0 ]; then
        cat "$TP_LOG"
        return 1
    fi
    bs_tx=$(bv_delta $bs_tx_n TX-packets)
    bs_rx=$(bv_delta $bs_rx_n RX-packets)
    echo "txonly: TX-packets +$bs_tx in $bs_tx_t s, back end CPU $bs_tx_cpu ticks"
    echo "rxonly: RX-packets +$bs_rx in $bs_rx_t s (pktgen sent about $((pg1 - pg0))), back end CPU $bs_rx_cpu ticks"
    bs_out=$(awk -v n="$bs_tx" -v f="$BV_TAKEN" 'BEGIN { printf "%.0f", n * f }')
    echo "txonly: about $bs_out of them left through the device (share $BV_TAKEN)"
    for bs_row in "txonly $bs_tx $bs_tx_t $bs_tx_cpu" "txout $bs_out $bs_tx_t $bs_tx_cpu" \
                  "rxonly $bs_rx $bs_rx_t $bs_rx_cpu"; do
        set -- $bs_row
        echo "$bs_r $1 $bs_b $2 $3 $4" >> $BV_RES
    done
}

bv_setup() {
    BV_K0_DEV=$(net_dev $BV_K0) BV_K0_MAC=$(net_mac $BV_K0)
    BV_MAC=$(virtio_net_mac $BV_DEV)
    VD_MAC=$BV_MAC  # the front end takes the device's MAC (vd_open)
    net_up $BV_K0 198.18.10.1/24 || return 1
    vfio_bind $BV_DEV || return 1
    dpdk_runs "$BENCH_DPDK" || return 1
    [ -e "/opt/dpdk-$BENCH_DPDK/pmds/librte_net_vhost.so" ] ||
        { echo "DPDK $BENCH_DPDK in this guest has no net_vhost (the relay)"; return 1; }
    echo "device $BV_DEV ($BV_MAC), peer $BV_K0 ($BV_K0_DEV, $BV_K0_MAC), DPDK $BENCH_DPDK ($(cat /opt/dpdk-$BENCH_DPDK/VERSION))"
}

# bv_report: per round and the medians; ratio > 1: vdpa ahead (pps:
# vdpa/relay; CPU per packet: relay/vdpa).
bv_report() {
    echo "vDPA benchmark: same front end (DPDK $BENCH_DPDK testpmd, virtio_user), same device, $BENCH_SECS s windows"
    echo "pps: the front end's counter delta per second (txout: the part of txonly the device took:"
    echo "the relay drops what the device's ring cannot take); ns/pkt: the back end's utime+stime per packet"
    echo "ratio > 1: vdpa ahead (pps vdpa/relay, ns/pkt relay/vdpa); medians of the columns and of the per-round ratios"
    sort -n $BV_RES | awk '
        function isort(arr, len,   i, j, t) {
            for (i = 2; i <= len; i++)
                for (j = i; j > 1 && arr[j - 1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t }
        }
        function median(arr, len) {
            isort(arr, len)
            return len % 2 ? arr[(len + 1) / 2] : (arr[len / 2] + arr[len / 2 + 1]) / 2
        }
        function row(label, mode, v, l, q, cv, cl, qc) {
            printf "%-7s %-7s %11.0f %11.0f %6.2f %12.0f %12.0f %7.1f\n", label, mode, v, l, q, cv, cl, qc
        }
        {
            P[$1 SUBSEP $2 SUBSEP $3] = ($5 > 0 ? $4 / $5 : 0)
            C[$1 SUBSEP $2 SUBSEP $3] = ($4 > 0 ? $6 * 1e7 / $4 : 0)
            if (!($1 in seen)) { seen[$1] = 1; rounds[++nr] = $1 }
        }
        END {
            printf "%-7s %-7s %11s %11s %6s %12s %12s %7s\n", "round", "mode", "vdpa pps", "relay pps", "ratio", "vdpa ns/pkt", "relay ns/pkt", "ratio"
            for (m = 1; m <= 3; m++) {
                mode = m == 1 ? "txonly" : m == 2 ? "txout" : "rxonly"
                k = 0
                for (i = 1; i <= nr; i++) {
                    r = rounds[i]
                    if (!((r SUBSEP mode SUBSEP "vdpa") in P) || !((r SUBSEP mode SUBSEP "relay") in P)) continue
                    v = P[r SUBSEP mode SUBSEP "vdpa"]; l = P[r SUBSEP mode SUBSEP "relay"]
                    cv = C[r SUBSEP mode SUBSEP "vdpa"]; cl = C[r SUBSEP mode SUBSEP "relay"]
                    # CPU per packet of 0 (no tick in the window): shown as 0.5 tick.
                    q = (l > 0 ? v / l : 0); qc = cl / (cv > 0 ? cv : 0.5e7 / (v > 0 ? v : 1))
                    row(r, mode, v, l, q, cv, cl, qc)
                    k++; V[k] = v; L[k] = l; CV[k] = cv; CL[k] = cl; Q[k] = q; QC[k] = qc
                }
                # The medians of each column, and of the per-round ratios.
                if (k) row("median", mode, median(V, k), median(L, k), median(Q, k), median(CV, k), median(CL, k), median(QC, k))
            }
        }'
}

run bench-vdpa-setup bv_setup
bv_i=1
while [ $bv_i -le "$BENCH_ROUNDS" ]; do
    bv_order="vdpa relay"
    [ $((bv_i % 2)) -eq 0 ] && bv_order="relay vdpa"
    for bv_b in $bv_order; do
        run "bench-vdpa-$bv_i-$bv_b" bv_session $bv_i $bv_b
    done
    bv_i=$((bv_i + 1))
done
run bench-vdpa-report bv_report
