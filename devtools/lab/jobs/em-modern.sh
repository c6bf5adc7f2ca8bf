# em driver on the modern shape (7.3 pair, 48-bit IOMMU), once per mode it
# offers: the e1000e 00:05.0 (82574L; its hub-0 neighbours are the igb and
# the virtio-net, not em NICs) is probed and takes the bad-input checks;
# the two e1000 on hub 1 (00:0a.0, 00:0b.0) carry the txonly counts. The
# addresses the kernel's drivers read from each EEPROM are taken before the
# NICs go to vfio-pci: the driver must read the same.
export VFIOKIT_LAB_SHAPE=modern
ports=
for bdf in 0000:00:05.0 0000:00:0a.0 0000:00:0b.0; do
    mac=$(cat /sys/bus/pci/devices/$bdf/net/*/address 2>/dev/null)
    [ -n "$mac" ] || echo "@@VFIOKIT:ERROR $bdf has no kernel netdev: no address to compare" >&3
    ports="$ports $bdf=$mac"
    vfio_bind $bdf
done
export VFIOKIT_EM_PORTS="$ports"
export VFIOKIT_EM_PAIRS="0000:00:0a.0>0000:00:0b.0"
each_mode em 0000:00:05.0 em_lab_test --gtest_filter='Lab/*'
