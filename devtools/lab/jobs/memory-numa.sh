# NUMA placement on the numa shape, once per mode it offers: an edu on node
# 1 gets node-1 memory.
export VFIOKIT_LAB_SHAPE=numa
vfio_bind 0000:41:00.0
each_mode memory-numa 0000:41:00.0 memory_lab_test --gtest_filter='*Numa*'
