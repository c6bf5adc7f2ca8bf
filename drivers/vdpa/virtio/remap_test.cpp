// The remap plan (new before old, a hole only where an IOVA changes its
// backing), the memory table's pieces, and the IOVA width check.
#include "remap.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

namespace vfiokit::vdpa {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kA = 0x7f0000000000;

Piece piece(std::uint64_t iova, std::uint64_t len, std::uint64_t ino, std::uint64_t offset) {
    Piece p;
    p.iova = iova;
    p.len = len;
    p.hva = 0x100000000 + offset;  // any: the plan only carries it
    p.dev = 1;
    p.ino = ino;
    p.offset = offset;
    return p;
}

std::string show(const std::vector<Piece>& ps) {
    std::string s;
    for (const auto& p : ps)
        s += "[" + std::to_string((p.iova - kA) / kMiB) + "," +
             std::to_string((p.iova + p.len - kA) / kMiB) + ")f" + std::to_string(p.ino) + "@" +
             std::to_string(p.offset / kMiB) + " ";
    return s;
}

TEST(RemapPlan, TheSameTableKeepsEverything) {
    const std::vector<Piece> t = {piece(kA, 4 * kMiB, 7, 0), piece(kA + 8 * kMiB, kMiB, 8, 0)};
    const auto p = plan_remap(t, t);
    EXPECT_EQ(p.keep, t);
    EXPECT_TRUE(p.map_first.empty() && p.unmap.empty() && p.map_after.empty());
}

TEST(RemapPlan, AGrowingRegionKeepsItsMappingAndAddsTheRestFirst) {
    const auto p = plan_remap(std::vector{piece(kA, kMiB, 7, 0)},
                              std::vector{piece(kA, 3 * kMiB, 7, 0)});
    EXPECT_EQ(show(p.keep), "[0,1)f7@0 ");
    EXPECT_EQ(show(p.map_first), "[1,3)f7@1 ");
    EXPECT_TRUE(p.unmap.empty() && p.map_after.empty());
}

TEST(RemapPlan, ANewRegionGoesInBeforeTheOldOneGoes) {
    const auto p = plan_remap(std::vector{piece(kA, kMiB, 7, 0)},
                              std::vector{piece(kA + 4 * kMiB, kMiB, 9, 0)});
    EXPECT_TRUE(p.keep.empty());
    EXPECT_EQ(show(p.map_first), "[4,5)f9@0 ");
    EXPECT_EQ(show(p.unmap), "[0,1)f7@0 ");
    EXPECT_TRUE(p.map_after.empty());
}

// Where an IOVA changes its backing (another file, or another offset of
// the same file), the old mapping must go first: only that part waits.
TEST(RemapPlan, OnlyIovasWhoseBackingChangesWaitForTheUnmap) {
    const auto p = plan_remap(std::vector{piece(kA, 2 * kMiB, 7, 0)},
                              std::vector{piece(kA + kMiB, 3 * kMiB, 9, 0)});
    EXPECT_TRUE(p.keep.empty());
    EXPECT_EQ(show(p.map_first), "[2,4)f9@1 ");
    EXPECT_EQ(show(p.unmap), "[0,2)f7@0 ");
    EXPECT_EQ(show(p.map_after), "[1,2)f9@0 ");

    const auto moved = plan_remap(std::vector{piece(kA, kMiB, 7, 0)},
                                  std::vector{piece(kA, kMiB, 7, 4 * kMiB)});
    EXPECT_TRUE(moved.keep.empty() && moved.map_first.empty());
    EXPECT_EQ(show(moved.map_after), "[0,1)f7@4 ");
}

// A mapping goes whole (the container unmaps whole mappings), so a
// shrinking region is mapped again: its remaining part waits.
TEST(RemapPlan, AShrinkingRegionIsMappedAgain) {
    const auto p = plan_remap(std::vector{piece(kA, 4 * kMiB, 7, 0)},
                              std::vector{piece(kA, kMiB, 7, 0)});
    EXPECT_TRUE(p.keep.empty() && p.map_first.empty());
    EXPECT_EQ(show(p.unmap), "[0,4)f7@0 ");
    EXPECT_EQ(show(p.map_after), "[0,1)f7@0 ");
}

TEST(RemapPlan, KeptPiecesSplitTheNewRegion) {
    const auto p = plan_remap(std::vector{piece(kA + kMiB, kMiB, 7, kMiB)},
                              std::vector{piece(kA, 3 * kMiB, 7, 0)});
    EXPECT_EQ(show(p.keep), "[1,2)f7@1 ");
    EXPECT_EQ(show(p.map_first), "[0,1)f7@0 [2,3)f7@2 ");
}

std::vector<vfio::IovaRange> width(unsigned bits) {
    // The x86 layout: everything below 2^bits but the MSI window.
    return {{0, 0xfedfffff}, {0xfef00000, (std::uint64_t{1} << bits) - 1}};
}

TEST(CheckFits, NamesTheWidthTheAddressAndTheFix) {
    EXPECT_EQ(iova_bits(width(39)), 39u);
    EXPECT_EQ(iova_bits(width(48)), 48u);
    const std::vector<Piece> fe = {piece(0x7f12a0000000, 64 * kMiB, 7, 0)};
    EXPECT_TRUE(check_fits(fe, width(48)));
    auto r = check_fits(fe, width(39));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().err(), ERANGE);
    const std::string m = r.error().message();
    for (const char* want : {"39-bit IOVA space", "0x7fffffffff", "0x7f12a3ffffff", "needs 47 bits",
                             "aw-bits=48"})
        EXPECT_NE(m.find(want), std::string::npos) << want << " in: " << m;
}

TEST(CheckFits, NamesAReservedWindow) {
    auto r = check_fits(std::vector{piece(0xfee00000, kMiB, 7, 0)}, width(48));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("reserves ([0xfee00000, 0xfeefffff])"), std::string::npos)
        << r.error().message();
}

TEST(PiecesFor, RoundsToPagesAndIdentifiesTheFile) {
    const int fd = ::memfd_create("vdpa-remap-test", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 4 * 4096), 0);
    vhost_user::Region r;
    r.gpa = kA + 0x10;
    r.size = 0x2000;
    r.uva = 0x1000;
    r.mmap_offset = 0x1010;
    r.hva = reinterpret_cast<void*>(0x200010);
    r.fd = fd;
    auto p = pieces_for(std::vector{r}, 4096);
    ASSERT_TRUE(p) << p.error().message();
    ASSERT_EQ(p->size(), 1u);
    EXPECT_EQ((*p)[0].iova, kA);
    EXPECT_EQ((*p)[0].len, 0x3000u);
    EXPECT_EQ((*p)[0].hva, 0x200000u);
    EXPECT_EQ((*p)[0].offset, 0x1000u);
    EXPECT_NE((*p)[0].ino, 0u);

    // A guest address and a mapping at different page offsets cannot be
    // mapped; two regions in one page neither.
    r.gpa = kA + 0x20;
    auto bad = pieces_for(std::vector{r}, 4096);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("different offsets"), std::string::npos);
    r.gpa = kA + 0x10;
    vhost_user::Region r2 = r;
    r2.gpa = kA + 0x2010;
    r2.hva = reinterpret_cast<void*>(0x400010);
    bad = pieces_for(std::vector{r, r2}, 4096);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("shares an IOMMU page"), std::string::npos);
    ::close(fd);
}

}  // namespace
}  // namespace vfiokit::vdpa
