# The kernel's own VFIO selftests (tools/testing/selftests/vfio of the lab's
# Linux 7.3, built by build-selftests.sh) on the modern shape's igb PF, a
# device their driver library drives (loopback DMA, MSI-X). They are the
# lab's outside check: the kernel's view of what VFIO does on this machine.
#
# Each program runs once as one step; it covers every IOMMU mode itself
# (its fixture variants vfio_type1_iommu ... iommufd, kselftest TAP output).
# The step turns that TAP into one line per test ("ok - ", "not ok - ",
# "skip - ", "known - ") and a table per mode, and passes only when every
# test passed or skipped with its reason, at least one passed, and the TAP
# is complete. A test that is wrong for an emulated device is listed in
# KNOWN below with the reason: it is printed as "known - ", counted apart,
# and never as a pass. A program that skips as a whole fails its step: this
# shape is built to give every program what it needs.
export VFIOKIT_LAB_SHAPE=modern
IGB=0000:00:04.0
export VFIO_SELFTESTS_BDF=$IGB
PROGRAMS="vfio_dma_mapping_test vfio_dma_mapping_mmio_test vfio_iommufd_setup_test
vfio_pci_device_test vfio_pci_device_init_perf_test vfio_pci_driver_test vfio_pci_sriov_uapi_test"
# The modes, as the selftests' iommu_modes[] names them.
MODES="vfio_type1_iommu vfio_type1v2_iommu iommufd_compat_type1 iommufd_compat_type1v2 iommufd"

# Programs run in fewer than every mode: "PROGRAM MODE... -- REASON". The
# other modes are reported as not run, with the reason. vfio_pci_driver_test
# maps and pins 1 GiB of 4 KiB pages in every test's fixture: about 12 s a
# test under emulation, 7 tests a mode, so one legacy and one iommufd mode
# run (vfiokit's own lab steps cover every mode on the same igb).
LIMITED=/tmp/kselftest-limited
echo "vfio_pci_driver_test vfio_type1v2_iommu iommufd -- each test pins 1 GiB of 4 KiB pages (~12 s under emulation); one legacy and the iommufd mode keep the job within the lab budget" > $LIMITED

# Tests that are wrong for QEMU's emulated devices: "PROGRAM TEST-REGEX REASON".
# TEST-REGEX matches the TAP name (fixture.variant.test). Only a failure is
# excused this way; a listed test that passes counts as a pass.
KNOWN=/tmp/kselftest-known
: > $KNOWN

# The shape gives the igb PF (8086:10c9) with SR-IOV, on vfio-pci, no VF
# yet, and the huge pages the mapping tests ask for (2 MiB and 1 GiB; the
# 1 GiB page only from the kernel command line). The 2 MiB pool is shrunk
# to what the tests map: vfio_pci_driver_test pins 1 GiB of ordinary memory.
# vfio_dma_mapping_test also reads the IOMMU's page tables in debugfs to
# check the page size each mapping got; a kernel without them
# (CONFIG_INTEL_IOMMU_DEBUGFS) makes it skip that check without a word, so
# the job says so here.
setup() {
    d=/sys/bus/pci/devices/$IGB
    mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
    if [ -d /sys/kernel/debug/iommu/intel ]; then
        echo "ok - IOMMU page tables in debugfs: vfio_dma_mapping_test checks page sizes"
    else
        echo "skip - vfio_dma_mapping_test's page-size check (no /sys/kernel/debug/iommu/intel: kernel without CONFIG_INTEL_IOMMU_DEBUGFS)"
    fi
    echo 4 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
    check "$IGB is an 82576 (igb, 8086:10c9)" \
        test "$(cat $d/vendor 2>/dev/null):$(cat $d/device 2>/dev/null)" = 0x8086:0x10c9
    check "$IGB offers SR-IOV VFs (sriov_totalvfs $(cat $d/sriov_totalvfs 2>/dev/null))" \
        test "$(cat $d/sriov_totalvfs 2>/dev/null || echo 0)" -gt 0
    check "vfio-pci allows SR-IOV (vfio_pci.enable_sriov=1)" \
        grep -qx Y /sys/module/vfio_pci/parameters/enable_sriov
    vfio_bind $IGB
    check "$IGB is on vfio-pci" test "$(basename "$(readlink $d/driver)")" = vfio-pci
    check "$IGB has no VF yet" test "$(cat $d/sriov_numvfs)" -eq 0
    check "/dev/vfio/vfio and /dev/iommu exist" test -c /dev/vfio/vfio -a -c /dev/iommu
    h2=/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages
    h1=/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages
    check "a free 2 MiB huge page ($(cat $h2 2>/dev/null) free)" test "$(cat $h2 2>/dev/null || echo 0)" -ge 1
    check "a free 1 GiB huge page ($(cat $h1 2>/dev/null) free)" test "$(cat $h1 2>/dev/null || echo 0)" -ge 1
    checks_done
}

uptime_cs() {
    read -r up _ < /proc/uptime
    echo "${up%.*}${up#*.}"
}

# kselftest PROGRAM: one program's run, its raw output (every figure it
# prints), then its tests one a line and its table per mode. Non-zero unless
# the run passed as the header says.
kselftest() {
    p=$1
    out=/tmp/ks-$p.out
    if ! command -v $p >/dev/null; then
        echo "$p: not in the guest (build-selftests.sh builds it; lab.py --bin puts it here)"
        return 1
    fi
    # The harness runs the variants given with -v (all when none is).
    ks_only=$(awk -v p=$p '$1 == p { for (i = 2; i <= NF && $i != "--"; i++) printf "%s ", $i }' $LIMITED)
    ks_args=
    for m in $ks_only; do ks_args="$ks_args -v $m"; done
    [ -n "$ks_only" ] && echo "$p: only $ks_only($(sed -n "s/^$p .* -- //p" $LIMITED))"
    t0=$(uptime_cs)
    # shellcheck disable=SC2086
    $p $ks_args > $out 2>&1
    rc=$?
    t1=$(uptime_cs)
    sed 's/^/| /' $out
    awk -v prog=$p -v rc=$rc -v cs=$((t1 - t0)) -v modes="$MODES" -v known=$KNOWN -v only="$ks_only" \
        -v table=/tmp/ks-table '
    BEGIN {
        nm = split(modes, mode, " ")
        while ((getline line < known) > 0) {
            split(line, f, " ")
            if (f[1] != prog) continue
            nk++; kre[nk] = f[2]
            r = line; sub(/^[^ ]+ +[^ ]+ +/, "", r); kwhy[nk] = r
        }
    }
    # The mode a test ran in: its variant names it ("iommufd_compat_type1_anonymous");
    # tests without a mode variant use the library default, iommufd.
    function mode_of(variant,   i, best) {
        best = ""
        for (i = 1; i <= nm; i++)
            if ((variant == mode[i] || index(variant, mode[i] "_") == 1) && length(mode[i]) > length(best))
                best = mode[i]
        return best == "" ? "iommufd" : best
    }
    /^1\.\.0 # SKIP/ { whole = $0; sub(/^1\.\.0 # SKIP */, "", whole); next }
    /^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
    /^(not )?ok [0-9]+ / {
        bad = ($1 == "not")
        s = $0; sub(/^(not )?ok [0-9]+ /, "", s)
        name = s; sub(/ #.*$/, "", name)
        dir = ""; if (index(s, " # ")) { dir = substr(s, index(s, " # ") + 3) }
        if (name == "" || name ~ /^#/) { whole = dir; sub(/^SKIP */, "", whole); next }
        results++
        n = split(name, part, ".")
        m = mode_of(n == 3 ? part[2] : "")
        seen[m] = 1
        if (bad) {
            why = ""
            for (i = 1; i <= nk; i++) if (name ~ kre[i]) { why = kwhy[i]; break }
            if (why != "") { kn[m]++; print "known - " m ": " name " (wrong for an emulated device: " why ")" }
            else { fl[m]++; print "not ok - " m ": " name }
        } else if (dir ~ /^SKIP/) {
            sk[m]++; r = dir; sub(/^SKIP */, "", r); print "skip - " m ": " name " (" r ")"
        } else if (dir ~ /^XFAIL/) {
            kn[m]++; print "known - " m ": " name " (the kernel marks it expected to fail: " dir ")"
        } else { ps[m]++; print "ok - " m ": " name }
    }
    END {
        printf "%s: exit %d, %d of %d planned tests reported, %d.%02d s\n", prog, rc, results, plan, cs / 100, cs % 100
        printf "%-24s %5s %5s %5s %5s\n", "mode", "pass", "fail", "skip", "known"
        for (i = 1; i <= nm; i++) {
            m = mode[i]
            if (!seen[m]) {
                printf "%-24s %5s %5s %5s %5s\n", m, "-", "-", "-", "-"
                if (only != "" && index(" " only, " " m " ") == 0)
                    printf "kselftest %s %s: not run here (LIMITED in the job says why)\n", prog, m >> table
                else
                    printf "kselftest %s %s: no test (the program has no variant for this mode)\n", prog, m >> table
                continue
            }
            printf "%-24s %5d %5d %5d %5d\n", m, ps[m], fl[m], sk[m], kn[m]
            printf "kselftest %s %s: %d passed, %d failed, %d skipped, %d known\n", prog, m, ps[m], fl[m], sk[m], kn[m] >> table
            tp += ps[m]; tf += fl[m]
        }
        ok = 1
        if (whole != "") { print prog ": skipped as a whole (" whole "): this shape should give it what it needs"; ok = 0 }
        if (whole == "" && (plan == 0 || results != plan)) {
            printf "%s: TAP incomplete (%d of %d tests reported)\n", prog, results, plan; ok = 0
        }
        if (tf > 0) ok = 0
        if (tp == 0) { print prog ": no test passed"; ok = 0 }
        if (rc != 0 && tf == 0 && ok) {
            # Only excused failures: the kernel harness exits 1 for them.
            known_only = 0; for (i = 1; i <= nm; i++) known_only += kn[mode[i]]
            if (rc != 1 || known_only == 0) { print prog ": exit " rc " without a failed test"; ok = 0 }
        }
        if (!ok) printf "kselftest %s: FAILED\n", prog >> table
        exit ok ? 0 : 1
    }' $out
}

# The table of every program and mode, and the figures the programs print
# (reference numbers for vfiokit's own benchmarks). Fails if a program left
# no line in the table.
report() {
    missing=0
    for p in $PROGRAMS; do
        grep -q "^kselftest $p " /tmp/ks-table 2>/dev/null || { echo "$p: no result"; missing=1; }
    done
    cat /tmp/ks-table
    # vfio_pci_device_init_perf_test: per mode, the time vfio_pci_device_init()
    # took (group/container or cdev open, BAR maps, IRQ info).
    awk '/RUN +vfio_pci_device_init_perf_test\./ { m = $3; sub(/^[^.]*\./, "", m); sub(/\..*$/, "", m) }
         /^(Wall|Min|Max|Avg) .*time/ && m != "" { t = $0; sub(/^.*: /, "", t); v[m] = v[m] " " tolower($1) " " t }
         /OK|FAIL/ && m != "" && v[m] != "" { print "kselftest init perf " m ":" v[m]; m = "" }' \
        /tmp/ks-vfio_pci_device_init_perf_test.out
    # vfio_dma_mapping_test: what each mapping became (size, IOVA) per variant.
    awk '/RUN +vfio_dma_mapping_test\./ { m = $3; sub(/^[^.]*\./, "", m); sub(/\..*$/, "", m) }
         /^Mapped HVA/ && m != "" { print "kselftest dma mapping " m ": " $0 }
         /^(PGD|P4D|PUD|PMD|PTE): / && m != "" { print "kselftest dma mapping " m ": " $0 }' \
        /tmp/ks-vfio_dma_mapping_test.out
    return $missing
}

run kselftest-setup setup
# Steps are named after the programs: vfio_pci_driver_test is kselftest-pci-driver.
for p in $PROGRAMS; do
    step=$(echo $p | sed 's/^vfio_//; s/_test$//; s/_/-/g')
    run kselftest-$step kselftest $p
done
run kselftest-report report
