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
    "$@" >&3 2>&3
    rc=$?
    IN_STEP=
    echo "@@VFIOKIT:END $name $rc" >&3
    return $rc
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
