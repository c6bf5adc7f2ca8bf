# The packet benchmark (devtools/bench-net.sh, doc/benchmarks.md):
# vfiokit-testpmd against DPDK's testpmd on the same NICs of one guest, in
# interleaved rounds. A benchmark, not a test: a step fails only when
# something could not be run, never on a number.
#
# devtools/bench-net.sh puts these lines before this one:
#   BENCH_DPDK=VERSION            the DPDK whose testpmd is the reference
#   BENCH_NICS='NAME,A,B,K0 ...'  per NIC model: A (hub 0) and B (hub 1)
#                                 for the testpmds, K0 (hub 0) on the kernel
#   BENCH_ROUNDS=N  BENCH_SECS=S  rounds, and the seconds of each window
# A vfiokit-testpmd-base in the guest (bench-net.sh --base BIN: another
# build, e.g. before a driver change) runs as a third program, "base".
#
# Per NIC model and round, each program runs two sessions (same options:
# --rxd/--txd 256, --burst 32, --txpkts 64, --nb-cores 1, a pool of 2048
# mbufs):
#   on A alone:  txonly (A's TX-packets), then rxonly while the kernel's
#                pktgen on K0 sends to A without pause (A's RX-packets);
#   on A and B:  io while pktgen on K0 sends into A (B's TX-packets).
# Each figure is a counter delta over one window of BENCH_SECS seconds,
# read with `show port stats all` at both ends (the same command, counters
# and timing for both programs), after a one-second warm-up. The CPU row
# is the testpmd process's utime+stime (/proc/PID/stat) over the same
# window divided by the packets: TCG gives the guest no PMU, so no cycle
# counter; for a core that polls without pause it is close to 1/pps.
# Round k runs DPDK first when k is odd, vfiokit first when it is even
# (the programs in reverse order).
BENCH_DPDK=${BENCH_DPDK:-22.11}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SECS=${BENCH_SECS:-4}
BN_RES=/tmp/bn.results
BN_OPTS="--nb-cores=1 --txpkts=64 --total-num-mbufs=2048"
: > $BN_RES

# bn_now: seconds since boot, with centiseconds (/proc/uptime).
bn_now() {
    cut -d' ' -f1 /proc/uptime
}

# bn_cpu PID: the process's CPU time so far in clock ticks (utime + stime,
# fields 14 and 15 of /proc/PID/stat; comm has no spaces here).
bn_cpu() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# bn_cmd COMMAND...: tp_cmd with a finer wait for the prompt (20 ms, not
# 200 ms): the window's ends are timed around it.
bn_cmd() {
    kill -0 $TP_PID 2>/dev/null || { echo "$TP_PROG is gone before '$*'"; return 1; }
    echo "$*" >&6 || return 1
    echo "$*" >> /tmp/tp.cmds
    TP_PROMPTS=$((TP_PROMPTS + 1))
    bc_n=3000
    while [ "$(grep -o "testpmd> " "$TP_LOG" | wc -l)" -lt $TP_PROMPTS ]; do
        kill -0 $TP_PID 2>/dev/null && [ $bc_n -gt 0 ] ||
            { echo "$TP_PROG: no prompt after '$*'"; return 1; }
        sleep 0.02
        bc_n=$((bc_n - 1))
    done
}

# bn_mark: `show port stats all`, timed: sets BM_T, the middle of the
# command's round trip, and BM_CPU, the process's CPU ticks then. Counts
# the shows (BN_SHOWS). Not in a subshell: it keeps the prompt count.
bn_mark() {
    bm_t0=$(bn_now)
    bn_cmd show port stats all || return 1
    bm_t1=$(bn_now)
    BM_CPU=$(bn_cpu $TP_PID)
    BN_SHOWS=$((BN_SHOWS + 1))
    BM_T=$(awk -v a="$bm_t0" -v b="$bm_t1" 'BEGIN { printf "%.3f", (a + b) / 2 }')
}

# bn_stat LOG N PORT FIELD: FIELD (RX-packets, RX-missed, TX-packets) of
# PORT in the N-th `show port stats all` of LOG.
bn_stat() {
    awk -v n="$2" -v p="$3" -v f="$4:" '
        /NIC statistics for port/ {
            for (i = 1; i <= NF; i++) if ($i == "port") { cur = $(i + 1); break }
            if (cur == p) seen++
            next
        }
        /^ *#####/ { cur = ""; next }
        cur == p && seen == n { for (i = 1; i < NF; i++) if ($i == f) { print $(i + 1); exit } }' "$1"
}

# bn_pktgen_start DEV DST_MAC DST_IP: pktgen on DEV sends 60-byte frames
# without pause and without end, in the background, until bn_pktgen_stop.
# UDP to port 5001, not pktgen's default 9: vfiokit-testpmd's rxonly checks
# the payload of frames to port 9 (its own txonly's), DPDK's checks none.
bn_pktgen_start() {
    BN_PG=
    pktgen_reset || return 1
    pktgen_add "$1" 0 "$2" "$3" || return 1
    echo "udp_dst_min 5001" > "/proc/net/pktgen/$1" && echo "udp_dst_max 5001" > "/proc/net/pktgen/$1" ||
        { echo "pktgen $1: udp_dst refused"; return 1; }
    pktgen_run &
    BN_PG=$!
    # Running once the device counts frames.
    wait_for 10 bn_pktgen_going "$1" || { echo "pktgen on $1 sends nothing"; return 1; }
}
bn_pktgen_going() {
    [ "$(pktgen_sent "$1")" -gt 0 ]
}
# (A bare `wait` would wait for testpmd too: only pktgen's shell, if any.)
bn_pktgen_stop() {
    echo stop > /proc/net/pktgen/pgctrl
    [ -n "${BN_PG:-}" ] && wait "$BN_PG" 2>/dev/null
    BN_PG=
    pktgen_reset
}

# bn_result ROUND NIC ROW PROG VALUE: one measured figure.
bn_result() {
    echo "$*" >> $BN_RES
}

# bn_window NAME SECS: after a one-second warm-up, two timed shows SECS
# apart; sets BN_T (seconds), BN_CPU (ticks) and BN_N (the second show's
# number; the first is BN_N - 1). Runs BN_DURING (if set) just before
# each show, e.g. to read pktgen's count.
bn_window() {
    sleep 1
    [ -n "${BN_DURING:-}" ] && BN_OFF0=$($BN_DURING)
    bn_mark || return 1
    bw_t=$BM_T bw_cpu=$BM_CPU
    sleep "$2"
    [ -n "${BN_DURING:-}" ] && BN_OFF1=$($BN_DURING)
    bn_mark || return 1
    BN_N=$BN_SHOWS
    BN_T=$(awk -v a="$bw_t" -v b="$BM_T" 'BEGIN { printf "%.3f", b - a }')
    BN_CPU=$((BM_CPU - bw_cpu))
}

# bn_delta N PORT FIELD: how much FIELD of PORT grew between shows N-1 and N.
bn_delta() {
    bd_a=$(bn_stat "$TP_LOG" $(($1 - 1)) "$2" "$3")
    bd_b=$(bn_stat "$TP_LOG" "$1" "$2" "$3")
    [ -n "$bd_a" ] && [ -n "$bd_b" ] && echo $((bd_b - bd_a))
}

# bn_rate COUNT SECS: COUNT / SECS, whole.
bn_rate() {
    awk -v c="$1" -v t="$2" 'BEGIN { printf "%.0f", (t > 0 ? c / t : 0) }'
}

# bn_cost TICKS COUNT: CPU nanoseconds per packet (ticks of 10 ms).
bn_cost() {
    awk -v k="$1" -v c="$2" 'BEGIN { printf "%.0f", (c > 0 ? k * 1e7 / c : 0) }'
}

# bn_name PROG: the program's column: dpdk, vfiokit or base.
bn_name() {
    case $1 in
        dpdk-*) echo dpdk ;;
        vfiokit-testpmd-base) echo base ;;
        *) echo vfiokit ;;
    esac
}

# bn_single ROUND NIC PROG A K0: the session on A alone (txonly, rxonly).
bn_single() {
    bs_r=$1 bs_nic=$2 bs_prog=$3 bs_a=$4 bs_k0=$5
    bs_name=$(bn_name "$bs_prog")
    BN_SHOWS=0 BN_DURING=
    tp_open "$bs_prog" "bn-$bs_name-1" "$bs_a" -- $BN_OPTS || return 1
    bs_ok=yes
    # txonly: what A sends, to txonly's default peer address (no NIC
    # on the hub takes it: the kernel NICs filter it out).
    { bn_cmd set fwd txonly && bn_cmd start && bn_window txonly "$BENCH_SECS" && bn_cmd stop; } || bs_ok=no
    if [ $bs_ok = yes ]; then
        bs_tx_n=$BN_N bs_tx_t=$BN_T bs_tx_cpu=$BN_CPU
    fi
    # rxonly: pktgen on K0 sends to A's MAC without pause.
    if [ $bs_ok = yes ]; then
        BN_DURING="pktgen_sent $bs_k0"
        { bn_cmd set fwd rxonly && bn_cmd start && bn_pktgen_start "$bs_k0" "$BN_A_MAC" 198.18.10.2 &&
            bn_window rxonly "$BENCH_SECS"; } || bs_ok=no
        bn_pktgen_stop
        bn_cmd stop || bs_ok=no
        BN_DURING=
        bs_rx_n=$BN_N bs_rx_t=$BN_T bs_rx_cpu=$BN_CPU bs_off=$((BN_OFF1 - BN_OFF0))
    fi
    tp_close > /dev/null
    echo "---- $bs_prog on $bs_a ($bs_nic), round $bs_r: exit $TP_RC"
    if [ $bs_ok != yes ] || [ "$TP_RC" -ne 0 ]; then
        cat "$TP_LOG"
        return 1
    fi
    bs_tx=$(bn_delta $bs_tx_n 0 TX-packets)
    bs_rx=$(bn_delta $bs_rx_n 0 RX-packets)
    bs_miss=$(bn_delta $bs_rx_n 0 RX-missed)
    echo "txonly: TX-packets +$bs_tx in $bs_tx_t s, CPU $bs_tx_cpu ticks"
    echo "rxonly: RX-packets +$bs_rx (RX-missed +$bs_miss) in $bs_rx_t s, pktgen sent $bs_off, CPU $bs_rx_cpu ticks"
    [ -n "$bs_tx" ] && [ -n "$bs_rx" ] || { echo "no port statistics in the log"; cat "$TP_LOG"; return 1; }
    bn_result "$bs_r" "$bs_nic" txonly-pps "$bs_name" "$(bn_rate "$bs_tx" "$bs_tx_t")"
    bn_result "$bs_r" "$bs_nic" txonly-cpu "$bs_name" "$(bn_cost "$bs_tx_cpu" "$bs_tx")"
    bn_result "$bs_r" "$bs_nic" rxonly-pps "$bs_name" "$(bn_rate "$bs_rx" "$bs_rx_t")"
    bn_result "$bs_r" "$bs_nic" rxonly-offered "$bs_name" "$(bn_rate "$bs_off" "$bs_rx_t")"
    bn_result "$bs_r" "$bs_nic" rxonly-cpu "$bs_name" "$(bn_cost "$bs_rx_cpu" "$bs_rx")"
}

# bn_pair ROUND NIC PROG A B K0: the session on A and B (io forwarding of
# pktgen's stream from K0: in at A on hub 0, out at B on hub 1).
bn_pair() {
    bp_r=$1 bp_nic=$2 bp_prog=$3 bp_a=$4 bp_b=$5 bp_k0=$6
    bp_name=$(bn_name "$bp_prog")
    BN_SHOWS=0 BN_DURING="pktgen_sent $bp_k0"
    tp_open "$bp_prog" "bn-$bp_name-2" "$bp_a" "$bp_b" -- $BN_OPTS || return 1
    bp_ok=yes
    # A frame for nobody on hub 1: it leaves B and is dropped there.
    { bn_cmd set fwd io && bn_cmd start && bn_pktgen_start "$bp_k0" 02:00:00:00:00:99 198.18.11.99 &&
        bn_window io "$BENCH_SECS"; } || bp_ok=no
    bn_pktgen_stop
    bn_cmd stop || bp_ok=no
    BN_DURING=
    tp_close > /dev/null
    echo "---- $bp_prog on $bp_a and $bp_b ($bp_nic), round $bp_r: exit $TP_RC"
    if [ $bp_ok != yes ] || [ "$TP_RC" -ne 0 ]; then
        cat "$TP_LOG"
        return 1
    fi
    bp_in=$(bn_delta $BN_N 0 RX-packets)
    bp_out=$(bn_delta $BN_N 1 TX-packets)
    bp_miss=$(bn_delta $BN_N 0 RX-missed)
    echo "io: port 0 RX-packets +$bp_in (RX-missed +$bp_miss), port 1 TX-packets +$bp_out in $BN_T s, pktgen sent $((BN_OFF1 - BN_OFF0)), CPU $BN_CPU ticks"
    [ -n "$bp_out" ] || { echo "no port statistics in the log"; cat "$TP_LOG"; return 1; }
    bn_result "$bp_r" "$bp_nic" io-pps "$bp_name" "$(bn_rate "$bp_out" "$BN_T")"
    bn_result "$bp_r" "$bp_nic" io-offered "$bp_name" "$(bn_rate $((BN_OFF1 - BN_OFF0)) "$BN_T")"
    bn_result "$bp_r" "$bp_nic" io-cpu "$bp_name" "$(bn_cost "$BN_CPU" "$bp_out")"
}

# bn_setup NAME A B K0: K0 up on the kernel's driver, A and B on vfio-pci.
bn_setup() {
    BN_K0_DEV=$(net_dev "$4")
    net_up "$4" 198.18.10.1/24 || return 1
    vfio_bind "$2" && vfio_bind "$3" || return 1
    echo "$1: A $2, B $3, K0 $4 ($BN_K0_DEV, kernel driver)"
}

# bn_round ROUND NAME A B K0: one round on one NIC model, both programs.
bn_round() {
    br_order="dpdk-testpmd-$BENCH_DPDK vfiokit-testpmd"
    command -v vfiokit-testpmd-base > /dev/null && br_order="$br_order vfiokit-testpmd-base"
    [ $(($1 % 2)) -eq 0 ] && br_order=$(echo "$br_order" | tr ' ' '\n' | sed -n '1!G;h;$p' | xargs)
    br_rc=0
    for br_p in $br_order; do
        bn_single "$1" "$2" "$br_p" "$3" "$BN_K0_DEV" || br_rc=1
        bn_pair "$1" "$2" "$br_p" "$3" "$4" "$BN_K0_DEV" || br_rc=1
    done
    return $br_rc
}

# bn_report: a table per round and the medians, from BN_RES. The ratio is
# how many times as fast vfiokit is: vfiokit/DPDK for pps, DPDK/vfiokit
# for CPU per packet; above 1 vfiokit is ahead. With a base program, its
# column and its own ratio to DPDK follow.
bn_report() {
    echo "DPDK $BENCH_DPDK ($(cat "/opt/dpdk-$BENCH_DPDK/VERSION")) vs vfiokit, $BENCH_SECS s windows, $BENCH_ROUNDS rounds"
    echo "rows: pps from counter deltas; offered: pktgen's rate into port 0 over the window;"
    echo "cpu: testpmd's utime+stime per packet (no PMU under TCG); ratio > 1: vfiokit ahead"
    awk '
        function unit(row) { return row ~ /cpu$/ ? "ns/pkt" : row ~ /deliv$/ ? "share" : "pps" }
        function ratio(row, d, v) {
            if (row ~ /offered$/ || d == "" || v == "") return "-"
            if (row ~ /cpu$/) return v > 0 ? sprintf("%.2f", d / v) : "-"
            return d > 0 ? sprintf("%.2f", v / d) : "-"
        }
        function sort(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        }
        function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        function dash(x) { return x == "" ? "-" : x }
        # The median of prog P (or of the ratio of P to DPDK when q) over
        # the rounds, for key k; "-" when none. Sets RNG to the range.
        function med(k, row, P, q,   i, r, d, v, n, A) {
            n = 0
            for (i = 1; i <= nr; i++) {
                r = rounds[i]; d = val[r, k, "dpdk"]; v = val[r, k, P]
                if (!q && v != "") A[++n] = v
                if (q && ratio(row, d, v) != "-") A[++n] = ratio(row, d, v) + 0
            }
            if (!n) { RNG = ""; return "-" }
            x = median(A, n)
            RNG = sprintf("[%.2f, %.2f]", A[1], A[n])
            return q ? sprintf("%.2f", x) : row ~ /deliv$/ ? sprintf("%.3f", x) : sprintf("%.0f", x)
        }
        function add(r, nic, row, p, v,   key) {
            key = nic SUBSEP row
            if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
            if (!(r in rseen)) { rseen[r] = 1; rounds[++nr] = r }
            val[r, key, p] = v
            if (p == "base") base = 1
        }
        {
            add($1, $2, $3, $4, $5)
            # The share of the offered frames that came through: where the
            # source is the limit, pps says more about the source than the
            # driver, and this is the figure to compare.
            if ($3 ~ /-pps$/) { pps[$1, $2, $3, $4] = $5 }
            if ($3 ~ /-offered$/) {
                m = $3; sub(/-offered$/, "", m)
                got = pps[$1, $2, m "-pps", $4]
                if (got != "" && $5 > 0) add($1, $2, m "-deliv", $4, sprintf("%.3f", got / $5))
            }
        }
        END {
            hdr = sprintf("%-8s %-15s %-7s %10s %10s %7s", "nic", "row", "unit", "DPDK", "vfiokit", "ratio")
            if (base) hdr = hdr sprintf(" %10s %7s", "base", "ratio")
            for (i = 1; i <= nr; i++) {
                r = rounds[i]
                printf "\nround %s (%s first)\n%s\n", r, r % 2 ? "DPDK" : (base ? "base" : "vfiokit"), hdr
                for (k = 1; k <= nk; k++) {
                    split(order[k], kk, SUBSEP)
                    d = val[r, order[k], "dpdk"]; v = val[r, order[k], "vfiokit"]; b = val[r, order[k], "base"]
                    printf "%-8s %-15s %-7s %10s %10s %7s", kk[1], kk[2], unit(kk[2]), dash(d), dash(v), ratio(kk[2], d, v)
                    if (base) printf " %10s %7s", dash(b), ratio(kk[2], d, b)
                    printf "\n"
                }
            }
            printf "\nmedian of %d rounds; [min, max] of the per-round ratios\n%s\n", nr, hdr
            for (k = 1; k <= nk; k++) {
                split(order[k], kk, SUBSEP)
                row = kk[2]
                line = sprintf("%-8s %-15s %-7s %10s %10s", kk[1], row, unit(row), med(order[k], row, "dpdk", 0), med(order[k], row, "vfiokit", 0))
                q = med(order[k], row, "vfiokit", 1); rng = RNG
                line = line sprintf(" %7s", q)
                if (base) {
                    line = line sprintf(" %10s", med(order[k], row, "base", 0))
                    qb = med(order[k], row, "base", 1)
                    line = line sprintf(" %7s", qb)
                    if (qb != "-") rng = rng "  base " RNG
                }
                printf "%s  %s\n", line, rng
            }
        }' $BN_RES
}

mkdir -p /var
[ -e /var/run ] || ln -s /run /var/run
run bench-net-dpdk dpdk_runs "$BENCH_DPDK"
bn_i=0
for bn_nic in $BENCH_NICS; do
    bn_i=$((bn_i + 1))
    set -- $(echo "$bn_nic" | tr , ' ')
    BN_A_MAC=$(net_mac "$2")
    [ -n "$BN_A_MAC" ] || BN_A_MAC=$(virtio_net_mac "$2")
    run "bench-net-setup-$1" bn_setup "$@" || continue
    bn_r=1
    while [ $bn_r -le "$BENCH_ROUNDS" ]; do
        run "bench-net-$1-round$bn_r" bn_round $bn_r "$@"
        bn_r=$((bn_r + 1))
    done
done
run bench-net-report bn_report
