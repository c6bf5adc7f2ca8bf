# VFIO state shared with other processes on the iommu shape, once per mode:
# a secondary (fresh image, state and memfd over SCM_RIGHTS) drives edu with
# the primary's fds; a custom container is shared too; fds from outside
# (from_external_fds, the broker's socket mode, in each mode). Then
# vfiokit-broker starts the test as uid 65534, which cannot open /dev itself
# and drives edu with the fds it inherited: in the mode auto picks (cdev),
# and in each group-style mode.
for bdf in 0000:00:03.0 0000:00:04.0; do
    vfio_bind $bdf
done
t=vfio_share_lab_test
run vfio-share-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-share-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-share-group-type1 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v1 VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
run vfio-share-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t --gtest_filter='Lab/*'
b="vfiokit-broker --uid 65534 --memlock 32M --device 0000:00:03.0"
run vfio-share-broker $b -- $t --role=unprivileged
run vfio-share-broker-cdev $b --vfio-mode cdev -- $t --role=unprivileged
run vfio-share-broker-group-type1v2 env VFIOKIT_VFIO_TYPE1=v2 $b --vfio-mode group -- $t --role=unprivileged
run vfio-share-broker-group-type1 env VFIOKIT_VFIO_TYPE1=v1 $b --vfio-mode group -- $t --role=unprivileged
run vfio-share-broker-compat $b --vfio-mode compat -- $t --role=unprivileged
