# The EAL's concurrency model under ThreadSanitizer, on the iommu shape:
# first proof that TSan is active and a report fails (exit status 66), then
# the test once per mode.
vfio_bind 0000:00:03.0
vfio_bind 0000:00:04.0
t=concurrency_tsan_lab_test
canary() { $t --race-canary; rc=$?; echo "race canary exit status $rc (66 expected)"; [ $rc -eq 66 ]; }
run tsan-canary canary
run tsan-cdev env VFIOKIT_VFIO_MODE=cdev VFIOKIT_LAB_SHAPE=iommu $t
run tsan-group-type1v2 env VFIOKIT_VFIO_MODE=group VFIOKIT_VFIO_TYPE1=v2 VFIOKIT_LAB_SHAPE=iommu $t
run tsan-compat env VFIOKIT_VFIO_MODE=compat VFIOKIT_LAB_SHAPE=iommu $t
