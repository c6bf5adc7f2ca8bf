# Helpers for lab jobs (sourced by /init in the guest; busybox sh).
# A job is a shell script of `vfio_bind`, `run` and `check` calls. Output
# meant for the host goes to fd 3 (the results port).

# bind_failed MESSAGE: a helper's failure. Inside a step (run) it is part of
# the step's output and the helper's non-zero status fails the step; outside
# any step it is a job error (@@VFIOKIT:ERROR), which fails the whole run on
# the host: a job never goes on quietly with a device on the wrong driver.
bind_failed() {
    if [ -n "$IN_STEP" ]; then
        echo "$1"
    else
        echo "@@VFIOKIT:ERROR $1" >&3
    fi
    return 1
}

# vfio_bind BDF: give the device to vfio-pci (driver_override, unbind from the
# current driver, reprobe) and verify it took. Fails as bind_failed says.
vfio_bind() {
    d=/sys/bus/pci/devices/$1
    [ -d "$d" ] || { bind_failed "vfio_bind $1: no such device"; return 1; }
    echo vfio-pci > "$d/driver_override"
    [ -e "$d/driver" ] && echo "$1" > "$d/driver/unbind"
    echo "$1" > /sys/bus/pci/drivers_probe
    drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
    [ "$drv" = vfio-pci ] ||
        { bind_failed "vfio_bind $1: bound to '${drv:-nothing}', not vfio-pci"; return 1; }
}

# driver_bind BDF DRIVER: give the device back to a kernel driver. Fails as
# bind_failed says.
driver_bind() {
    d=/sys/bus/pci/devices/$1
    [ -d "$d" ] || { bind_failed "driver_bind $1: no such device"; return 1; }
    echo "$2" > "$d/driver_override"
    [ -e "$d/driver" ] && echo "$1" > "$d/driver/unbind"
    echo "$1" > /sys/bus/pci/drivers_probe
    drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
    [ "$drv" = "$2" ] ||
        { bind_failed "driver_bind $1: bound to '${drv:-nothing}', not $2"; return 1; }
}

# host_action VERB JSON: ask the host to act on QEMU through QMP (verbs:
# device_del, which returns once QEMU has removed the device, device_add,
# set_link) and wait for its answer. Prints the host's reply; non-zero
# unless it is "RESULT ok ...".
host_action() {
    echo "ACTION $1 $2" >&4
    if ! read -t 120 -r ha_reply <&4; then
        echo "host_action $1: no reply from the host within 120 s"
        return 1
    fi
    echo "$ha_reply"
    case "$ha_reply" in "RESULT ok"*) return 0 ;; *) return 1 ;; esac
}

# link_follows_host BDF HUBPORT: a step; BDF's kernel netdev sees its link
# go down and come back as the host sets HUBPORT's link (set_link).
link_follows_host() {
    lf_dev=$(ls /sys/bus/pci/devices/$1/net 2>/dev/null)
    check "$1 has a kernel netdev ($lf_dev)" test -n "$lf_dev"
    ip link set "$lf_dev" up
    check "carrier up at first" wait_for 20 carrier_is "$lf_dev" 1
    check "host takes the link down (set_link $2 off)" \
        host_action set_link "{\"name\": \"$2\", \"up\": false}"
    check "carrier went down" wait_for 20 carrier_is "$lf_dev" 0
    check "host brings it back" host_action set_link "{\"name\": \"$2\", \"up\": true}"
    check "carrier came back" wait_for 20 carrier_is "$lf_dev" 1
    checks_done
}

carrier_is() { test "$(cat /sys/class/net/$1/carrier 2>/dev/null)" = "$2"; }

# host_refuses: a step; the host refuses verbs the lab does not allow and
# arguments that are not JSON, and passes QMP's own errors back.
host_refuses() {
    check "a verb the lab does not allow is refused" refused_with "not one the lab allows" quit '{}'
    check "QMP's error for an unknown device comes back" \
        refused_with "DeviceNotFound" device_del '{"id": "nosuch"}'
    check "arguments that are not JSON are refused" refused_with "not JSON" set_link 'up'
    checks_done
}

# refused_with TEXT VERB JSON: the host refuses the request, saying TEXT.
refused_with() {
    rw_text=$1
    shift
    rw_reply=$(host_action "$@") && return 1
    echo "$rw_reply" | grep -q "^RESULT error .*$rw_text"
}

# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds; non-zero
# if it never did.
wait_for() {
    wf_n=$(( $1 * 5 ))
    shift
    while [ $wf_n -gt 0 ]; do
        "$@" 2>/dev/null && return 0
        sleep 0.2
        wf_n=$((wf_n - 1))
    done
    return 1
}

# iommu_present HUGEPAGES WIDTH: a step; an intel-iommu is registered, the
# VFIO and IOMMUFD nodes exist, HUGEPAGES 2 MiB pages are reserved and the
# IOMMU is WIDTH bits wide (the shape's aw-bits).
iommu_present() {
    check "an IOMMU is registered (/sys/class/iommu/dmar0)" test -e /sys/class/iommu/dmar0
    check "/dev/iommu exists" test -c /dev/iommu
    check "/dev/vfio/vfio exists" test -c /dev/vfio/vfio
    check "$1 hugepages reserved" grep -q "HugePages_Total: *$1$" /proc/meminfo
    check "the IOMMU is $2 bits wide (aw-bits=$2)" test "$(iommu_width)" = "$2"
    echo "IOMMU address width: $(iommu_width) bits"
    checks_done
}

# iommu_width: the first IOMMU's guest address width in bits (VT-d
# capability register, MGAW field bits 21:16, plus one).
iommu_width() {
    cap=0x$(cat /sys/class/iommu/dmar0/intel-iommu/cap)
    echo $(( ((cap >> 16) & 0x3f) + 1 ))
}

# iommu_group BDF: prints the device's IOMMU group number.
iommu_group() {
    basename "$(readlink "/sys/bus/pci/devices/$1/iommu_group")"
}

# run NAME CMD...: run one test step; the host reports NAME with its status.
# A step that runs gtest and passes no test (a filter matching nothing, or
# every test skipped) is failed by the host (lab.py).
run() {
    name=$1
    shift
    echo "@@VFIOKIT:BEGIN $name" >&3
    IN_STEP=1
    read run_t0 _ < /proc/uptime
    "$@" >&3 2>&3
    rc=$?
    read run_t1 _ < /proc/uptime
    IN_STEP=
    # The step's guest time in centiseconds (uptime has two decimals), so
    # the host can say where a job's time goes.
    echo "@@VFIOKIT:END $name $rc $(( ${run_t1%.*}${run_t1#*.} - ${run_t0%.*}${run_t0#*.} ))" >&3
    return $rc
}

# skip NAME REASON: a step that cannot run here; the host reports it as
# skipped with the reason, so it never silently vanishes.
skip() {
    echo "@@VFIOKIT:SKIP $1 $2" >&3
}

# each_mode AREA BDF CMD...: the kernel VFIO selftests' way of covering
# modes. Runs CMD once per VFIO mode variant (the mode table's rows, group
# split into its type1 flavours), as step AREA-LABEL (vfio-core-cdev,
# vfio-core-group-type1v2, ...), with VFIOKIT_VFIO_MODE and
# VFIOKIT_VFIO_TYPE1 set. `vfiokit-info --modes BDF` says which variants
# this kernel and shape offer BDF; the others are reported skipped with
# the table's reason. Non-zero if a step failed or the modes could not be
# listed.
each_mode() {
    em_area=$1
    em_dev=$2
    shift 2
    if ! vfiokit-info --modes "$em_dev" > /tmp/each_mode 2>&1; then
        run "$em_area-modes" sh -c 'cat /tmp/each_mode; exit 1'
        return 1
    fi
    em_rc=0
    while read -r em_tag em_label em_mode em_type1 em_ok em_reason; do
        [ "$em_tag" = mode ] || continue
        if [ "$em_ok" = yes ]; then
            run "$em_area-$em_label" in_vfio_mode "$em_mode" "$em_type1" "$@" \
                < /dev/null || em_rc=1
        else
            skip "$em_area-$em_label" "$em_reason"
        fi
    done < /tmp/each_mode
    return $em_rc
}

# in_vfio_mode MODE TYPE1 CMD...: CMD (a program or a function of the job)
# in a subshell with VFIOKIT_VFIO_MODE and VFIOKIT_VFIO_TYPE1 exported.
in_vfio_mode() {
    (
        export VFIOKIT_VFIO_MODE="$1" VFIOKIT_VFIO_TYPE1="$2"
        shift 2
        "$@"
    )
}

# check DESCRIPTION CMD...: one assertion inside a step; prints ok/not ok and
# counts failures in CHECK_FAILED (a step function returns it).
CHECK_FAILED=0
check() {
    desc=$1
    shift
    if "$@" >/dev/null 2>&1; then
        echo "ok - $desc"
    else
        echo "not ok - $desc"
        CHECK_FAILED=$((CHECK_FAILED + 1))
    fi
}

# checks_done: ends a step made of `check` calls; non-zero if any failed.
checks_done() {
    n=$CHECK_FAILED
    CHECK_FAILED=0
    [ "$n" -eq 0 ] || echo "$n check(s) failed"
    return "$n"
}

# check_kernel_options: every option of the lab's kernel fragment is in the
# running kernel (/proc/config.gz), one check each.
check_kernel_options() {
    zcat /proc/config.gz > /tmp/config
    while read -r line; do
        case "$line" in CONFIG_*=*) check "kernel has $line" grep -qx "$line" /tmp/config ;; esac
    done < /lab/kernel.config
    checks_done
}

# --- DPDK peers (lab.py --dpdk VERSION; bundles.py) ---------------------------

# dpdk_versions: the DPDK versions in this guest, oldest first, one a line.
dpdk_versions() {
    for dv_d in /opt/dpdk-*; do
        [ -x "$dv_d/bin/dpdk-testpmd" ] && echo "${dv_d#/opt/dpdk-}"
    done | sort -t. -k1,1n -k2,2n
}

# dpdk_runs VERSION: whether that DPDK's testpmd starts in this guest: its
# loader and libraries load and its EAL initialises (no devices, no
# hugepages). On failure prints why (testpmd's last lines). The answer is
# kept for the rest of the boot.
dpdk_runs() {
    dr_log=/run/dpdk-runs-$1
    if [ ! -e "$dr_log.rc" ]; then
        if ! command -v "dpdk-testpmd-$1" >/dev/null; then
            echo "DPDK $1 is not in this guest (lab.py --dpdk $1)" > "$dr_log"
            echo 127 > "$dr_log.rc"
        else
            "dpdk-testpmd-$1" --no-pci --no-huge -m 64 --no-shconf -l 0-1 -- --help \
                > "$dr_log" 2>&1 < /dev/null
            echo $? > "$dr_log.rc"
        fi
    fi
    [ "$(cat "$dr_log.rc")" = 0 ] && return 0
    echo "DPDK $1 does not run here (exit $(cat "$dr_log.rc")):"
    tail -5 "$dr_log"
    return 1
}

# dpdk_newest: prints the newest DPDK version in this guest that runs here
# (benchmarks compare against it); non-zero, with each version's reason on
# stderr, when none does.
dpdk_newest() {
    for dn_v in $(dpdk_versions | sort -t. -k1,1nr -k2,2nr); do
        dpdk_runs "$dn_v" >&2 && { echo "$dn_v"; return 0; }
    done
    echo "dpdk_newest: no DPDK runs in this guest (present: $(dpdk_versions | tr '\n' ' '))" >&2
    return 1
}

# dpdk_testpmd [VERSION] ARGS...: run testpmd (EAL args, then -- and its own)
# of VERSION, or of the newest DPDK that runs here when no version is given.
dpdk_testpmd() {
    case "$1" in
        [0-9]*.[0-9]*) dt_v=$1; shift ;;
        *) dt_v=$(dpdk_newest) || return 127 ;;
    esac
    "dpdk-testpmd-$dt_v" "$@"
}

# dpdk_rx_packets LOG PORT: RX-packets of PORT in testpmd's final forward
# statistics in LOG (empty if the port has none).
dpdk_rx_packets() {
    awk -v p="$2" '/Forward statistics for port/ {
            for (i = 1; i <= NF; i++) if ($i == "port") cur = $(i + 1)
            next }
        cur == p && /RX-packets:/ { print $2; exit }' "$1"
}

# dpdk_prompts PID LOG N: wait (up to 120 s, while PID lives) until
# testpmd's LOG shows its N-th prompt. Its prompt is written straight to
# the fd, so it shows although the rest of stdout is still buffered.
dpdk_prompts() {
    dq_n=600
    while [ "$(grep -o "testpmd> " "$2" | wc -l)" -lt "$3" ]; do
        kill -0 "$1" 2>/dev/null && [ $dq_n -gt 0 ] || return 1
        sleep 0.2
        dq_n=$((dq_n - 1))
    done
}

# dpdk_forward VERSION MODE SECONDS BDF...: testpmd of DPDK VERSION takes the
# given devices (bound to vfio-pci), forwards (io, each port sending a
# first burst) for SECONDS, stops and quits; shows its output. Checks that
# the commands ran and it exited 0, that DPDK's VFIO used MODE ("Type 1" or
# "No-IOMMU", as DPDK's EAL names the IOMMU type it set), and that every
# port received packets. Non-zero if a check failed (a step function).
dpdk_forward() {
    df_v=$1 df_mode=$2 df_secs=$3
    shift 3
    df_log=/tmp/testpmd-$df_v.log
    df_in=/tmp/testpmd-$df_v.in
    df_allow=
    for df_b; do df_allow="$df_allow -a $df_b"; done
    rm -f "$df_in" && mkfifo "$df_in"
    # Interactive, its commands from a FIFO: the prompt tells when each
    # command is done (the output itself is buffered until exit).
    # shellcheck disable=SC2086
    "dpdk-testpmd-$df_v" -l 0-1 -n 1 --in-memory $df_allow \
        --log-level=lib.eal:info --log-level=bus.pci:info -- \
        -i --forward-mode=io --total-num-mbufs=2048 --rxd=256 --txd=256 \
        < "$df_in" > "$df_log" 2>&1 &
    df_pid=$!
    exec 5> "$df_in"
    df_cmds=no
    dpdk_prompts $df_pid "$df_log" 1 && echo "start tx_first" >&5 &&
        dpdk_prompts $df_pid "$df_log" 2 && sleep "$df_secs" && echo stop >&5 &&
        dpdk_prompts $df_pid "$df_log" 3 && echo quit >&5 && df_cmds=yes
    # End of input ends testpmd's command loop too.
    exec 5>&-
    df_n=300
    while kill -0 $df_pid 2>/dev/null && [ $df_n -gt 0 ]; do
        sleep 0.2
        df_n=$((df_n - 1))
    done
    kill -0 $df_pid 2>/dev/null && { echo "testpmd did not quit within 60 s: killed"; kill -9 $df_pid; }
    wait $df_pid
    df_rc=$?
    cat "$df_log"
    echo
    echo "---- DPDK $df_v ($(cat "/opt/dpdk-$df_v/VERSION")) on $*"
    check "testpmd took start tx_first, stop, quit" test $df_cmds = yes
    check "testpmd exited 0 (exit $df_rc)" test $df_rc -eq 0
    df_type=$(grep -o "IOMMU type [0-9]* ([^)]*)" "$df_log" | head -1)
    check "DPDK's VFIO uses $df_mode (${df_type:-no IOMMU type in the log})" \
        test "${df_type#*(}" = "$df_mode)"
    # Port ids follow the probe order EAL logs.
    df_probed=$(sed -n 's/.*Probe PCI driver: .* device: \([0-9a-f:.]*\).*/\1/p' "$df_log")
    check "testpmd probed the $# devices ($(echo "$df_probed" | xargs))" \
        test "$(echo "$df_probed" | grep -c .)" -eq $#
    df_port=0
    for df_b in $df_probed; do
        df_rx=$(dpdk_rx_packets "$df_log" $df_port)
        check "port $df_port ($df_b) received packets (RX-packets ${df_rx:-none})" \
            test "${df_rx:-0}" -gt 0
        df_port=$((df_port + 1))
    done
    checks_done
}

# dpdk_peers MODE BDF...: step dpdk-peer-VERSION for each DPDK in the guest:
# dpdk_forward on the devices for 3 s, DPDK's VFIO in MODE. A version that
# does not start here fails its step with the reason; a guest without any
# DPDK fails step dpdk-peers. Non-zero if a step failed.
dpdk_peers() {
    dp_mode=$1
    shift
    dp_versions=$(dpdk_versions)
    if [ -z "$dp_versions" ]; then
        run dpdk-peers sh -c 'echo "no DPDK in this guest: run lab.py with --dpdk VERSION"; exit 1'
        return 1
    fi
    dp_rc=0
    for dp_v in $dp_versions; do
        run "dpdk-peer-$dp_v" dpdk_peer_step "$dp_v" "$dp_mode" "$@" || dp_rc=1
    done
    return $dp_rc
}

# dpdk_peer_step VERSION MODE BDF...: one version's dpdk_peers step.
dpdk_peer_step() {
    dps_v=$1 dps_mode=$2
    shift 2
    dpdk_runs "$dps_v" || return 1
    dpdk_forward "$dps_v" "$dps_mode" 3 "$@"
}


# file_or_ended FILE PID: FILE exists, or PID ended (a zombie until waited
# for) without making it.
file_or_ended() {
    test -e "$1" || ! test -e "/proc/$2" || grep -q ') Z' "/proc/$2/stat"
}

# hotplug_timeline LOG T0 T1 REPLY: the removal's timeline on the guest's
# clock (/proc/uptime, the test's CLOCK_MONOTONIC), from the job's
# device_del (T0) to its answer (T1, after QEMU's DEVICE_DELETED): the
# test's "hotplug-timeline STEP SECONDS" lines, in order, and the host's
# own measure of device_del to DEVICE_DELETED from REPLY.
hotplug_timeline() {
    echo "hot-unplug timeline (s after device_del was sent):"
    {
        echo "device_del-sent $2"
        grep '^hotplug-timeline ' "$1" | cut -d' ' -f2-
        echo "device_del-answered $3"
    } | sort -n -k2 | awk -v t0="$2" '{ printf "  %+8.3f  %s\n", $2 - t0, $1 }'
    ht_host=$(echo "$4" | sed -n 's/.*"deleted_after_s": *\([0-9.]*\).*/\1/p')
    [ -n "$ht_host" ] && echo "  host: DEVICE_DELETED $ht_host s after it sent device_del"
}

# hotplug_edu ROOTPORT BUS KEEP [PROPS]: one mode of the edu hotplug test
# (tests/lab/edu/hotplug_test.cpp). The hotplug root port ROOTPORT (QEMU
# id BUS) is empty; edu_hotplug_lab_test keeps the edu KEEP (put on
# vfio-pci here), asks for an edu on BUS (the host's device_add, with the
# JSON properties PROPS, ", \"key\": value"), probes and uses it, then asks
# for its removal (the host's device_del, answered once QEMU reports
# DEVICE_DELETED). Checks the kernel's side (dmesg) and prints the
# timeline. The root port is empty again afterwards.
hotplug_edu() {
    he_edu=$(printf '0000:%02x:00.0' "$(cat "/sys/bus/pci/devices/$1/secondary_bus_number")")
    he_dir=/tmp/hotplug-edu
    rm -rf $he_dir
    mkdir -p $he_dir
    check "root port $1 is empty ($he_edu absent)" test ! -e "/sys/bus/pci/devices/$he_edu"
    vfio_bind "$3" || return 1
    dmesg -c > /dev/null 2>&1
    VFIOKIT_HOTPLUG_EDU=$he_edu VFIOKIT_HOTPLUG_KEEP=$3 VFIOKIT_HOTPLUG_DIR=$he_dir \
        edu_hotplug_lab_test --gtest_filter='Hotplug/*' > $he_dir/log 2>&1 &
    he_pid=$!
    # The bound for a test that never gets its events.
    (sleep 150; kill -9 $he_pid 2>/dev/null) &
    he_killer=$!
    he_t1= he_reply=
    wait_for 60 file_or_ended $he_dir/add $he_pid
    if [ -e $he_dir/add ]; then
        check "host adds an edu on $2 (device_add hotedu)" \
            host_action device_add "{\"driver\": \"edu\", \"id\": \"hotedu\", \"bus\": \"$2\"$4}"
        wait_for 60 file_or_ended $he_dir/del $he_pid
    fi
    if [ -e $he_dir/del ]; then
        read -r he_t0 _ < /proc/uptime
        he_reply=$(host_action device_del '{"id": "hotedu"}')
        he_ok=$?
        read -r he_t1 _ < /proc/uptime
        echo "$he_reply"
        check "host removed it (device_del hotedu answered after DEVICE_DELETED)" test $he_ok -eq 0
    fi
    wait $he_pid
    he_rc=$?
    kill $he_killer 2>/dev/null
    cat $he_dir/log
    check "edu_hotplug_lab_test passed" test $he_rc -eq 0
    check "the guest saw $he_edu go" wait_for 10 test ! -e "/sys/bus/pci/devices/$he_edu"
    dmesg | grep -i "$he_edu" | grep -i "vfio\|request\|pciehp"
    check "vfio-pci relayed the request to the processes" \
        sh -c "dmesg | grep -q '$he_edu: Relaying device request to user (#0)'"
    check "no repeated request (the first was answered)" \
        sh -c "! dmesg | grep -q '$he_edu: Relaying device request to user (#[1-9]'"
    check "no 'still in use' warning" sh -c "! dmesg | grep -q 'currently in use\|blocked until'"
    [ -n "$he_t1" ] && hotplug_timeline $he_dir/log "$he_t0" "$he_t1" "$he_reply"
    # A failed run may leave the edu in: take it out for the next mode.
    if [ -e "/sys/bus/pci/devices/$he_edu" ]; then
        host_action device_del '{"id": "hotedu"}'
        wait_for 10 test ! -e "/sys/bus/pci/devices/$he_edu"
    fi
    checks_done
}

# --- Several jobs in one guest (lab.py --job A --job B ...) ------------------
# Each job is written for a machine as it boots. lab_boot_state notes that
# state once; lab_job runs one job in a subshell (its variables, functions
# and exports end with it) between @@VFIOKIT:JOB and @@VFIOKIT:JOBEND
# markers, then lab_restore puts the machine back before the next job.

# lab_boot_state: every PCI device's driver ('-' for none) and VF count,
# and the 2 MiB huge page pool, as the guest booted.
lab_boot_state() {
    for ls_d in /sys/bus/pci/devices/*; do
        ls_drv=$(basename "$(readlink "$ls_d/driver" 2>/dev/null)" 2>/dev/null)
        echo "${ls_d##*/} ${ls_drv:--} $(cat "$ls_d/sriov_numvfs" 2>/dev/null || echo -)"
    done > /lab/boot-devices
    cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages > /lab/boot-hugepages
}

# lab_job NAME FILE [last]: one job of several; the last one leaves the
# machine as it is (the guest powers off).
lab_job() {
    echo "@@VFIOKIT:JOB $1" >&3
    read -r lj_t0 _ < /proc/uptime
    ( . "$2" )
    read -r lj_t1 _ < /proc/uptime
    [ "${3:-}" = last ] || lab_restore
    echo "@@VFIOKIT:JOBEND $1 $(( ${lj_t1%.*}${lj_t1#*.} - ${lj_t0%.*}${lj_t0#*.} ))" >&3
}

# lab_restore: the machine as lab_boot_state found it, for the next job:
# no process of the job left (one could hold a VFIO device), VFs removed,
# every device on its boot driver with no driver_override, kernel netdevs
# down without addresses, /tmp, /run and /dev/hugepages empty, the huge
# page pool its boot size. What cannot be put back is a job error
# (@@VFIOKIT:ERROR, within the job: it fails that job).
lab_restore() {
    # Processes: everything but this shell (pid 1) and kernel threads
    # (no exe). Builtins only, so that the loop starts no process itself.
    for lr_p in /proc/[0-9]*; do
        lr_pid=${lr_p#/proc/}
        [ "$lr_pid" = 1 ] && continue
        [ -e "$lr_p/exe" ] && kill -9 "$lr_pid" 2>/dev/null
    done
    wait
    while read -r lr_bdf lr_drv lr_vfs; do
        lr_d=/sys/bus/pci/devices/$lr_bdf
        [ "$lr_vfs" = 0 ] && [ "$(cat "$lr_d/sriov_numvfs" 2>/dev/null || echo 0)" != 0 ] &&
            echo 0 > "$lr_d/sriov_numvfs"
    done < /lab/boot-devices
    while read -r lr_bdf lr_drv lr_vfs; do
        lr_d=/sys/bus/pci/devices/$lr_bdf
        if [ ! -d "$lr_d" ]; then
            echo "@@VFIOKIT:ERROR after the job: $lr_bdf is gone (the next job needs the machine as it booted)" >&3
            continue
        fi
        lr_cur=$(basename "$(readlink "$lr_d/driver" 2>/dev/null)" 2>/dev/null)
        lr_ovr=$(cat "$lr_d/driver_override" 2>/dev/null)
        [ -n "$lr_ovr" ] && [ "$lr_ovr" != "(null)" ] && echo > "$lr_d/driver_override"
        [ "${lr_cur:--}" = "$lr_drv" ] && continue
        [ -n "$lr_cur" ] && echo "$lr_bdf" > "$lr_d/driver/unbind"
        [ "$lr_drv" != - ] && echo "$lr_bdf" > /sys/bus/pci/drivers_probe
        lr_cur=$(basename "$(readlink "$lr_d/driver" 2>/dev/null)" 2>/dev/null)
        [ "${lr_cur:--}" = "$lr_drv" ] ||
            echo "@@VFIOKIT:ERROR after the job: $lr_bdf is on '${lr_cur:-no driver}', not its boot driver '$lr_drv'" >&3
    done < /lab/boot-devices
    for lr_n in /sys/class/net/*; do
        lr_n=${lr_n##*/}
        [ "$lr_n" = lo ] && continue
        ip addr flush dev "$lr_n" 2>/dev/null
        ip link set dev "$lr_n" down 2>/dev/null
    done
    ip neigh flush all 2>/dev/null
    rm -rf /tmp/* /run/* 2>/dev/null
    rm -f /dev/hugepages/* 2>/dev/null
    lr_hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    [ "$(cat $lr_hp)" = "$(cat /lab/boot-hugepages)" ] || cat /lab/boot-hugepages > $lr_hp
    return 0
}
