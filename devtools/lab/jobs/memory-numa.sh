# NUMA placement on the numa shape: an edu on node 1 gets node-1 memory.
vfio_bind 0000:41:00.0
t=memory_lab_test
run memory-numa-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=numa $t --gtest_filter='*Numa*'
run memory-numa-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=numa $t --gtest_filter='*Numa*'
