# The primary SIGKILLed during a secondary's DMA through its edu: the
# secondary's callback within 1 s, the restart's error naming the
# secondary, the restart after it exits, no hugepage or file left behind;
# and a secondary SIGKILLed holding hugepages it mapped into the primary's
# container, which the primary's cleanup unmaps (IOVAs free again,
# HugePages_Free back); once per mode the shape offers.
export VFIOKIT_LAB_SHAPE=iommu
vfio_bind 0000:00:03.0
each_mode mp-crash 0000:00:03.0 mp_crash_lab_test
