# EAL memory and mbuf pools on the noiommu shape (IOVA = physical address), once per mode
# it offers.
export VFIOKIT_LAB_SHAPE=noiommu
vfio_bind 0000:00:03.0
each_mode memory 0000:00:03.0 memory_lab_test
# Every call of memory's operations failed in turn: nothing left behind,
# with hugepages, and in each mode's default container.
each_mode memory-fault 0000:00:03.0 memory_fault_test
# Mbuf pools from EAL memory: the edu DMAs through m->iova().
each_mode mbuf 0000:00:03.0 mbuf_lab_test
