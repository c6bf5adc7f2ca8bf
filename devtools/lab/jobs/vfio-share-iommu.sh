# VFIO state shared with other processes on the iommu shape, once per mode
# it offers: a secondary (fresh image, state and memfd over SCM_RIGHTS)
# drives edu with the primary's fds; a custom container is shared too; fds
# from outside (from_external_fds, the broker's socket mode, in each mode).
# Then vfiokit-broker starts the test as uid 65534, which cannot open /dev
# itself and drives edu with the fds it inherited: in the mode auto picks
# (cdev), and in each mode the shape offers. Last, the handover.
export VFIOKIT_LAB_SHAPE=iommu
for bdf in 0000:00:03.0 0000:00:04.0; do
    vfio_bind $bdf
done
t=vfio_share_lab_test
each_mode vfio-share 0000:00:03.0 $t --gtest_filter='Lab/*'
b="vfiokit-broker --uid 65534 --memlock 32M --device 0000:00:03.0"
# With a stray fd (7) and variables the driver must not get (LAB_SECRET,
# a PATH through /tmp): the driver checks it has only the broker's fds
# and a known environment.
run vfio-share-broker env LAB_SECRET=1 PATH=/tmp:$PATH $b -- $t --role=unprivileged 7</proc/version
# The broker takes its mode from VFIOKIT_VFIO_MODE/VFIOKIT_VFIO_TYPE1 (set
# by each_mode) like every vfiokit program; noiommu refuses unprivileged
# drivers and is proven on its own shape.
each_mode vfio-share-broker 0000:00:03.0 $b -- $t --role=unprivileged
# The whole state handed to a new process while a DMA runs (cdev on 6.13+:
# IOMMU_IOAS_CHANGE_PROCESS; elsewhere the refusal naming what it needs),
# a re-init to compare, the failure cases, and 1 GiB mapped by address vs
# by file (time, pinned-page accounting).
each_mode vfio-handover 0000:00:03.0 vfio_handover_lab_test
