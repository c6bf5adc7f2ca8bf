# VF tokens on real virtual functions (modern shape, Linux 7.3 pair): the
# igb PF at 0000:00:04.0 goes from the kernel's igb to vfio-pci, which
# makes two VFs (vfio_pci.enable_sriov=1 on the kernel command line) and
# binds them itself. vf_token_lab_test then runs once per VFIO mode
# (tests/lab/vfio/vf_token_test.cpp): the PF's owner (vfiokit in this
# process, the EAL's -a PF,vf_token=UUID, and another process) sets the
# token, VFs open and answer with it, and a wrong or missing token is
# refused naming the PF. Last, the VFs go and the PF returns to the driver
# it had.
export VFIOKIT_LAB_SHAPE=modern
pf=0000:00:04.0
pf_dir=/sys/bus/pci/devices/$pf
pf_driver=$(basename "$(readlink $pf_dir/driver)" 2>/dev/null)

vf_of() {  # N: the address of the PF's VF N
    basename "$(readlink $pf_dir/virtfn$1)" 2>/dev/null
}

setup() {
    check "PF $pf is an 82576 on ${pf_driver:-no driver}" \
        test "$(cat $pf_dir/device)" = 0x10c9 -a -n "$pf_driver"
    check "it offers VFs (sriov_totalvfs $(cat $pf_dir/sriov_totalvfs))" \
        test "$(cat $pf_dir/sriov_totalvfs)" -ge 2
    check "it has none yet" test "$(cat $pf_dir/sriov_numvfs)" = 0
    check "vfio-pci may make VFs (vfio_pci.enable_sriov)" \
        test "$(cat /sys/module/vfio_pci/parameters/enable_sriov)" = Y
    check "PF to vfio-pci" vfio_bind $pf
    check "vfio-pci makes two VFs" sh -c "echo 2 > $pf_dir/sriov_numvfs"
    for n in 0 1; do
        vf=$(vf_of $n)
        check "VF $n ($vf) is an 82576 VF" test "$(cat /sys/bus/pci/devices/$vf/device 2>/dev/null)" = 0x10ca
        check "VF $n ($vf) is on vfio-pci" \
            test "$(basename "$(readlink /sys/bus/pci/devices/$vf/driver)")" = vfio-pci
    done
    # The inventory shows the relation and what opening each one takes.
    vfiokit-info $pf "$(vf_of 0)" > /tmp/vftoken-info 2>&1
    cat /tmp/vftoken-info
    check "inventory: the PF's two VFs" grep -q "sr-iov       PF, 2 of [0-9]* VFs: $(vf_of 0), $(vf_of 1); VF token: its VFs need it" /tmp/vftoken-info
    check "inventory: the VF's PF on vfio-pci, token required" \
        grep -q "sr-iov       VF of PF $pf (vfio-pci); VF token: required" /tmp/vftoken-info
    check "inventory: vfio-pci's SR-IOV switch" grep -q "vfio-pci SR-IOV (enable_sriov): yes" /tmp/vftoken-info
    vfiokit-info --json "$(vf_of 1)" > /tmp/vftoken-json 2>&1
    check "inventory JSON: the VF's PF and token" \
        grep -q "\"sriov\":{\"role\":\"vf\",\"pf\":\"$pf\",\"pf_driver\":\"vfio-pci\",\"vf_token\":\"required\"}" /tmp/vftoken-json
    checks_done
}

teardown() {
    check "VFs removed" sh -c "echo 0 > $pf_dir/sriov_numvfs"
    check "no VF remains" test ! -e $pf_dir/virtfn0
    check "PF back to $pf_driver" driver_bind $pf "$pf_driver"
    echo > $pf_dir/driver_override
    check "PF's driver_override cleared" test "$(cat $pf_dir/driver_override)" = "(null)"
    checks_done
}

run vftoken-setup setup
each_mode vftoken $pf vf_token_lab_test --gtest_filter='Lab/*'
run vftoken-teardown teardown
