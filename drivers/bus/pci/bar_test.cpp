// Bar over a memfd standing in for the device: part of the "BAR" is
// mmap()ed, the rest reached through the device's region read/write, here
// pread/pwrite at region_offset + offset through the syscall seam, as the
// kernel backends serve them from vfio-pci. Whichever path an access takes,
// it must behave the same.
#include "vfiokit/bus/pci/bar.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "vfiokit/bus/pci/register.hpp"

namespace vfiokit::pci {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kRegionOffset = 2 * kPage;  // where the "region" starts in the fd
constexpr std::uint64_t kBarSize = 4 * kPage;
// Mapped: [0x1000, 0x3000); pread/pwrite: [0, 0x1000) and [0x3000, 0x4000),
// like a BAR whose MSI-X table the kernel keeps out of the mapping.
constexpr std::uint64_t kPartOffset = kPage;
constexpr std::uint64_t kPartSize = 2 * kPage;

// Region read/write of BAR 2 over the memfd; nothing else.
class MemfdDevice : public vfio::DeviceOps {
public:
    explicit MemfdDevice(int fd) : fd_(fd) {}
    Result<vfio::DeviceInfo> info() override { return fail(no("info")); }
    Result<vfio::RegionInfo> region_info(std::uint32_t) override { return fail(no("region info")); }
    Result<void> read_region(std::uint32_t, std::uint64_t off, void* buf, std::size_t len) override {
        const ssize_t n = vfio::sys().pread(fd_, buf, len, static_cast<off_t>(kRegionOffset + off));
        if (n != static_cast<ssize_t>(len))
            return fail(n < 0 ? errno : EIO, "pread");
        return {};
    }
    Result<void> write_region(std::uint32_t, std::uint64_t off, const void* buf,
                              std::size_t len) override {
        const ssize_t n = vfio::sys().pwrite(fd_, buf, len, static_cast<off_t>(kRegionOffset + off));
        if (n != static_cast<ssize_t>(len))
            return fail(n < 0 ? errno : EIO, "pwrite");
        return {};
    }
    Result<vfio::Mapping> map_region(std::uint32_t, std::uint64_t, std::uint64_t, int, void*) override {
        return fail(no("mmap"));
    }
    Result<vfio::IrqInfo> irq_info(std::uint32_t) override { return fail(no("IRQ info")); }
    Result<void> set_irqs(const vfio::IrqRequest&) override { return fail(no("set IRQs")); }
    Result<void> reset() override { return fail(no("reset")); }
    Result<void> feature(std::uint32_t, vfio::FeatureOp, std::span<std::uint8_t>) override {
        return fail(no("feature"));
    }

private:
    static Error no(std::string_view what) { return vfio::not_supported(what, "a memfd"); }
    int fd_;
};

class BarOverMemfd : public ::testing::Test {
protected:
    void SetUp() override {
        fd_ = vfio::Fd(::memfd_create("vfiokit-bar-test", MFD_CLOEXEC));
        ASSERT_TRUE(fd_.valid());
        ASSERT_EQ(::ftruncate(fd_.get(), static_cast<off_t>(kRegionOffset + kBarSize)), 0);
        dev_ = std::make_shared<MemfdDevice>(fd_.get());
    }
    vfio::Mapping map(std::uint64_t bar_off, std::uint64_t len) {
        auto m = vfio::map_memory(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(),
                                  static_cast<off_t>(kRegionOffset + bar_off), "test part");
        EXPECT_TRUE(m) << m.error().message();
        return m ? std::move(*m) : vfio::Mapping();
    }
    // BAR 2 with [kPartOffset, +kPartSize) mapped.
    Bar mixed() {
        std::vector<Bar::Part> parts;
        parts.push_back({kPartOffset, map(kPartOffset, kPartSize)});
        return Bar(2, dev_, kBarSize, false, std::move(parts));
    }
    // Everything through pread/pwrite.
    Bar unmapped() { return Bar(2, dev_, kBarSize, false, {}); }
    // Everything mapped.
    Bar whole() {
        std::vector<Bar::Part> parts;
        parts.push_back({0, map(0, kBarSize)});
        return Bar(2, dev_, kBarSize, false, std::move(parts));
    }
    // The bytes of the "device" at a BAR offset, read behind the Bar's back.
    template <class T>
    T device(std::uint64_t off) {
        T v{};
        EXPECT_EQ(::pread(fd_.get(), &v, sizeof v, static_cast<off_t>(kRegionOffset + off)),
                  static_cast<ssize_t>(sizeof v));
        return v;
    }
    vfio::Fd fd_;
    std::shared_ptr<vfio::DeviceOps> dev_;
};

TEST_F(BarOverMemfd, MappedAndPointerFollowTheParts) {
    Bar b = mixed();
    EXPECT_EQ(b.index(), 2u);
    EXPECT_EQ(b.size(), kBarSize);
    EXPECT_FALSE(b.io_port());
    ASSERT_EQ(b.parts().size(), 1u);
    EXPECT_FALSE(b.mapped(0));
    EXPECT_FALSE(b.mapped(kPartOffset - 1));
    EXPECT_TRUE(b.mapped(kPartOffset));
    EXPECT_TRUE(b.mapped(kPartOffset, kPartSize));
    EXPECT_FALSE(b.mapped(kPartOffset, kPartSize + 1));
    EXPECT_FALSE(b.mapped(kPartOffset - 4, 8));  // straddles the start
    EXPECT_TRUE(b.mapped(kPartOffset + kPartSize - 8, 8));
    EXPECT_FALSE(b.mapped(kPartOffset + kPartSize));
    EXPECT_FALSE(b.mapped(~0ULL, 2));  // no overflow
    EXPECT_FALSE(b.mapped(kPartOffset, ~0ULL));
    EXPECT_EQ(b.pointer(0, 4), nullptr);
    ASSERT_NE(b.pointer(kPartOffset + 0x10, 4), nullptr);
    EXPECT_EQ(b.pointer(kPartOffset + 0x10, 4),
              static_cast<volatile std::uint8_t*>(b.parts()[0].map.addr()) + 0x10);
}

TEST_F(BarOverMemfd, MappedAndUnmappedOffsetsBehaveTheSame) {
    Bar b = mixed();
    Bar through_syscalls = unmapped();
    Bar through_mapping = whole();
    // Offsets before, inside and after the mapped part, at each width.
    std::uint64_t value = 0x1122334455667788ULL;
    for (std::uint64_t off : {std::uint64_t{0}, std::uint64_t{0x8}, kPartOffset, kPartOffset + 0x100,
                              kPartOffset + kPartSize - 8, kPartOffset + kPartSize, kBarSize - 8}) {
        SCOPED_TRACE(off);
        b.write<std::uint64_t>(off, value);
        EXPECT_EQ(device<std::uint64_t>(off), value);
        EXPECT_EQ(b.read<std::uint64_t>(off), value);
        EXPECT_EQ(through_syscalls.read<std::uint64_t>(off), value);
        EXPECT_EQ(through_mapping.read<std::uint64_t>(off), value);
        // Narrower accesses see the little-endian bytes of the same value.
        EXPECT_EQ(b.read<std::uint32_t>(off + 4), static_cast<std::uint32_t>(value >> 32));
        EXPECT_EQ(b.read<std::uint16_t>(off + 2), static_cast<std::uint16_t>(value >> 16));
        EXPECT_EQ(b.read<std::uint8_t>(off + 7), static_cast<std::uint8_t>(value >> 56));
        b.write<std::uint32_t>(off, 0xcafef00d);
        b.write<std::uint16_t>(off + 4, 0xbeef);
        b.write<std::uint8_t>(off + 6, 0x5a);
        const std::uint64_t now = (value & 0xff00'0000'0000'0000ULL) | 0x005a'beef'cafe'f00dULL;
        EXPECT_EQ(through_syscalls.read<std::uint64_t>(off), now);
        EXPECT_EQ(through_mapping.read<std::uint64_t>(off), now);
        EXPECT_EQ(device<std::uint64_t>(off), now);
        value = value * 3 + 1;
    }
    // Writes through the syscall path land where the mapping sees them.
    through_syscalls.write<std::uint32_t>(kPartOffset + 0x20, 0x12345678);
    EXPECT_EQ(b.read<std::uint32_t>(kPartOffset + 0x20), 0x12345678u);
    EXPECT_EQ(*reinterpret_cast<volatile std::uint32_t*>(b.pointer(kPartOffset + 0x20, 4)), 0x12345678u);
}

TEST_F(BarOverMemfd, OutOfRangeAndUnalignedAreEinval) {
    Bar b = mixed();
    struct Case {
        std::uint64_t off;
        const char* why;
    };
    for (Case c : {Case{kBarSize, "at the end"}, Case{kBarSize - 2, "straddles the end"},
                   Case{~0ULL - 1, "would overflow"}, Case{kPartOffset + 2, "unaligned, mapped"},
                   Case{6, "unaligned, unmapped"}}) {
        SCOPED_TRACE(c.why);
        auto r = b.try_read<std::uint32_t>(c.off);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().err(), EINVAL);
        auto w = b.try_write<std::uint32_t>(c.off, 1);
        ASSERT_FALSE(w);
        EXPECT_EQ(w.error().err(), EINVAL);
    }
    auto r = b.try_read<std::uint32_t>(kBarSize - 2);
    EXPECT_EQ(r.error().message(),
              "BAR2 offset 0x3ffe: 32-bit read outside the BAR (size 0x4000): Invalid argument "
              "(errno 22)");
    // The last register fits.
    EXPECT_TRUE(b.try_read<std::uint32_t>(kBarSize - 4));
    EXPECT_TRUE(b.try_read<std::uint8_t>(kBarSize - 1));
}

TEST_F(BarOverMemfd, UncheckedFormsActLikeAMasterAbort) {
    Bar b = mixed();
    b.write<std::uint32_t>(kBarSize - 4, 0x01020304);
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(b.read<std::uint32_t>(kBarSize), 0xffffffffu);
    EXPECT_EQ(b.read<std::uint64_t>(kBarSize - 4), ~0ULL);
    b.write<std::uint64_t>(kBarSize - 4, 0);  // dropped
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("BAR2 offset 0x4000: 32-bit read outside the BAR"), std::string::npos) << log;
    EXPECT_NE(log.find("(read returns all-ones)"), std::string::npos) << log;
    EXPECT_NE(log.find("(write dropped)"), std::string::npos) << log;
    EXPECT_EQ(device<std::uint32_t>(kBarSize - 4), 0x01020304u);
}

TEST_F(BarOverMemfd, FailedRegionReadAndWriteAreReported) {
    Bar b = mixed();
    vfio::FaultInjector fi;
    vfio::ScopedSyscalls guard(fi);
    fi.fail_nth(vfio::Call::pread, 1, EIO);
    auto r = b.try_read<std::uint32_t>(0x10);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), EIO);
    EXPECT_EQ(r.error().message(), "BAR2 offset 0x10: 32-bit read: pread: Input/output error (errno 5)");
    // The mapped part issues no syscall at all.
    fi.fail_nth(vfio::Call::pread, 1, EIO);
    EXPECT_TRUE(b.try_read<std::uint32_t>(kPartOffset));
    EXPECT_EQ(fi.count(vfio::Call::pread), 0u);
    fi.fail_nth(vfio::Call::pwrite, 1, EFAULT);
    auto w = b.try_write<std::uint16_t>(kBarSize - 2, 7);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().err(), EFAULT);
    fi.fail_nth(vfio::Call::pread, 1, EIO);
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(b.read<std::uint16_t>(0), 0xffffu);
    (void)::testing::internal::GetCapturedStderr();
}

TEST_F(BarOverMemfd, RegistersWorkOnABar) {
    struct Doorbell : Register<Doorbell, std::uint32_t, 0x3004> {  // in the pwrite part
        VFIOKIT_FIELD(15, 0, tail);
        VFIOKIT_FIELD(31, 31, valid);
    };
    struct Mirror : Register<Mirror, std::uint32_t, kPartOffset + 4> {  // in the mapping
        VFIOKIT_FIELD(31, 0, all);
    };
    Bar b = mixed();
    Doorbell::zero().set_tail(0x42).set_valid(1).write(b);
    EXPECT_EQ(device<std::uint32_t>(0x3004), 0x80000042u);
    Doorbell::read(b).set_tail(0x43).write(b);
    EXPECT_EQ(device<std::uint32_t>(0x3004), 0x80000043u);
    Mirror::zero().set_all(0xa5a5a5a5).write(b);
    EXPECT_EQ(device<std::uint32_t>(kPartOffset + 4), 0xa5a5a5a5u);
}

TEST_F(BarOverMemfd, MoveKeepsTheMappingAndDestructionUnmaps) {
    vfio::FaultInjector fi;
    vfio::ScopedSyscalls guard(fi);
    {
        Bar a = mixed();
        volatile std::uint8_t* p = a.pointer(kPartOffset, 4);
        Bar b = std::move(a);
        EXPECT_EQ(b.pointer(kPartOffset, 4), p);
        EXPECT_TRUE(a.parts().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
        Bar c;
        c = std::move(b);
        EXPECT_EQ(c.pointer(kPartOffset, 4), p);
        c.write<std::uint8_t>(kPartOffset, 9);
        EXPECT_EQ(fi.count(vfio::Call::munmap), 0u);
    }
    EXPECT_EQ(fi.count(vfio::Call::munmap), 1u);
}

TEST_F(BarOverMemfd, IoPortBarHasNoMappingButWorks) {
    Bar io(2, dev_, 0x20, true, {});
    EXPECT_TRUE(io.io_port());
    EXPECT_FALSE(io.mapped(0));
    io.write<std::uint32_t>(0x1c, 0xabcd);
    EXPECT_EQ(io.read<std::uint32_t>(0x1c), 0xabcdu);
    EXPECT_FALSE(io.try_read<std::uint32_t>(0x20));
}

}  // namespace
}  // namespace vfiokit::pci
