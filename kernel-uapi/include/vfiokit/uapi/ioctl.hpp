// Linux ioctl request numbers, computed at compile time.
//
// A request number packs four fields into 32 bits (the generic layout, which
// x86 and arm64 use; powerpc, mips, sparc and alpha differ and are not
// supported here):
//
//   bits  0..7   nr    command number within the driver's range
//   bits  8..15  type  the driver's "magic" byte (';' for VFIO and IOMMUFD)
//   bits 16..29  size  byte size of the argument struct (0 when not encoded)
//   bits 30..31  dir   data direction seen from userspace: none/write/read
//
// VFIO and IOMMUFD encode neither size nor direction (every request is the
// plain io() form): their argument structs start with a size field instead,
// which lets a struct grow without changing the request number.
#pragma once

#include <cstddef>

namespace vfiokit::uapi {

inline constexpr unsigned kIocNrBits = 8;
inline constexpr unsigned kIocTypeBits = 8;
inline constexpr unsigned kIocSizeBits = 14;
inline constexpr unsigned kIocDirBits = 2;

inline constexpr unsigned kIocNrShift = 0;
inline constexpr unsigned kIocTypeShift = kIocNrShift + kIocNrBits;
inline constexpr unsigned kIocSizeShift = kIocTypeShift + kIocTypeBits;
inline constexpr unsigned kIocDirShift = kIocSizeShift + kIocSizeBits;

// Direction values. "Write" means userspace writes (the kernel reads the
// argument), "read" means userspace reads what the kernel fills in.
inline constexpr unsigned kIocNone = 0;
inline constexpr unsigned kIocWrite = 1;
inline constexpr unsigned kIocRead = 2;

// Largest argument size the size field can carry.
inline constexpr std::size_t kIocSizeMax = (std::size_t{1} << kIocSizeBits) - 1;

// The general form. Out-of-range fields are masked, as the C macros would
// silently let them spill into neighbouring fields; the typed helpers below
// reject oversized structs at compile time instead.
[[nodiscard]] constexpr unsigned long ioc(unsigned dir, unsigned type,
                                          unsigned nr, std::size_t size) {
    return (static_cast<unsigned long>(dir & ((1u << kIocDirBits) - 1)) << kIocDirShift) |
           (static_cast<unsigned long>(type & ((1u << kIocTypeBits) - 1)) << kIocTypeShift) |
           (static_cast<unsigned long>(nr & ((1u << kIocNrBits) - 1)) << kIocNrShift) |
           (static_cast<unsigned long>(size & kIocSizeMax) << kIocSizeShift);
}

// No argument size or direction encoded (_IO).
[[nodiscard]] constexpr unsigned long io(unsigned type, unsigned nr) {
    return ioc(kIocNone, type, nr, 0);
}

// Kernel fills a T (_IOR).
template <class T>
[[nodiscard]] constexpr unsigned long ior(unsigned type, unsigned nr) {
    static_assert(sizeof(T) <= kIocSizeMax, "argument too large for an ioctl number");
    return ioc(kIocRead, type, nr, sizeof(T));
}

// Kernel reads a T (_IOW).
template <class T>
[[nodiscard]] constexpr unsigned long iow(unsigned type, unsigned nr) {
    static_assert(sizeof(T) <= kIocSizeMax, "argument too large for an ioctl number");
    return ioc(kIocWrite, type, nr, sizeof(T));
}

// Both directions (_IOWR).
template <class T>
[[nodiscard]] constexpr unsigned long iowr(unsigned type, unsigned nr) {
    static_assert(sizeof(T) <= kIocSizeMax, "argument too large for an ioctl number");
    return ioc(kIocRead | kIocWrite, type, nr, sizeof(T));
}

// Field extraction, for diagnostics ("ioctl ';' 0x6a failed").
[[nodiscard]] constexpr unsigned ioc_dir(unsigned long req) {
    return static_cast<unsigned>(req >> kIocDirShift) & ((1u << kIocDirBits) - 1);
}
[[nodiscard]] constexpr unsigned ioc_type(unsigned long req) {
    return static_cast<unsigned>(req >> kIocTypeShift) & ((1u << kIocTypeBits) - 1);
}
[[nodiscard]] constexpr unsigned ioc_nr(unsigned long req) {
    return static_cast<unsigned>(req >> kIocNrShift) & ((1u << kIocNrBits) - 1);
}
[[nodiscard]] constexpr std::size_t ioc_size(unsigned long req) {
    return static_cast<std::size_t>(req >> kIocSizeShift) & kIocSizeMax;
}

}  // namespace vfiokit::uapi
