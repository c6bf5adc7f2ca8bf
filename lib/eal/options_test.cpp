#include "vfiokit/eal/options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace vfiokit::eal {
namespace {

Result<int> parse(std::vector<const char*> args, Options& o) {
    args.insert(args.begin(), "app");
    return parse_options(static_cast<int>(args.size()), args.data(), o);
}

TEST(Options, VfioModeAndAllowBlockInBothSpellings) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    ::unsetenv("VFIOKIT_VFIO_TYPE1");
    Options o;
    auto r = parse({"--vfio-mode=group", "--vfio-type1", "v1", "-a", "00:03.0", "-a0000:00:04.0",
                    "--allow=0000:00:05.0,vf_token=2ab74924-c335-45f4-9b16-8569e5b08258",
                    "-b", "0000:00:06.0", "--", "--app-opt"},
                   o);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, 11);  // argv[11] is "--app-opt"
    EXPECT_EQ(o.vfio.mode, vfio::Mode::group);
    EXPECT_EQ(o.vfio.type1, vfio::Type1::v1);
    ASSERT_EQ(o.allow.size(), 3u);
    EXPECT_EQ(o.allow[0].addr.str(), "0000:00:03.0");
    EXPECT_EQ(o.allow[2].vf_token, "2ab74924-c335-45f4-9b16-8569e5b08258");
    ASSERT_EQ(o.block.size(), 1u);
}

TEST(Options, MemoryOptionsWithDpdkNames) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    Options o;
    EXPECT_EQ(o.memory.iova_mode, IovaMode::automatic);
    ASSERT_TRUE(parse({"--no-huge", "--huge-dir", "/dev/hugepages", "--iova-mode=pa", "-m", "256",
                       "--base-virtaddr=0x1000000"},
                      o));
    EXPECT_TRUE(o.memory.no_huge);
    EXPECT_EQ(o.memory.huge_dir, "/dev/hugepages");
    EXPECT_EQ(o.memory.iova_mode, IovaMode::pa);
    EXPECT_EQ(o.memory_mb, 256u);
    EXPECT_EQ(o.memory.base_virtaddr, 0x1000000u);
    Options p;
    ASSERT_TRUE(parse({"--socket-mem=128,64"}, p));
    EXPECT_EQ(p.socket_mem_mb, (std::vector<std::uint64_t>{128, 64}));
    Options q;
    auto both = parse({"-m", "1", "--socket-mem", "1"}, q);
    ASSERT_FALSE(both);
    Options r;
    EXPECT_FALSE(parse({"-m", "lots"}, r));
}

TEST(Options, AutoLeavesModeOpen) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    Options o;
    ASSERT_TRUE(parse({"--vfio-mode=auto"}, o));
    EXPECT_FALSE(o.vfio.mode);
}

TEST(Options, EnvironmentFillsWhatTheCommandLineLeftOpen) {
    ::setenv("VFIOKIT_VFIO_MODE", "cdev", 1);
    Options o;
    ASSERT_TRUE(parse({}, o));
    EXPECT_EQ(o.vfio.mode, vfio::Mode::cdev);
    Options p;
    ASSERT_TRUE(parse({"--vfio-mode=noiommu"}, p));
    EXPECT_EQ(p.vfio.mode, vfio::Mode::noiommu);
    ::setenv("VFIOKIT_VFIO_MODE", "warp", 1);
    Options q;
    auto bad = parse({}, q);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("VFIOKIT_VFIO_MODE"), std::string::npos);
    ::unsetenv("VFIOKIT_VFIO_MODE");
}

TEST(Options, ProcTypeAndFilePrefixWithDpdkNames) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    Options d;
    ASSERT_TRUE(parse({}, d));
    EXPECT_EQ(d.proc_type, ProcType::primary);  // DPDK's default
    EXPECT_EQ(d.file_prefix, "vfiokit");
    Options o;
    ASSERT_TRUE(parse({"--proc-type=secondary", "--file-prefix", "pmd-0.test_A"}, o));
    EXPECT_EQ(o.proc_type, ProcType::secondary);
    EXPECT_EQ(o.file_prefix, "pmd-0.test_A");
    Options p;
    ASSERT_TRUE(parse({"--proc-type", "auto", "--file-prefix=x"}, p));
    EXPECT_EQ(p.proc_type, ProcType::automatic);
    EXPECT_EQ(to_string(p.proc_type), "auto");
}

TEST(Options, FilePrefixMustBeADirectoryName) {
    for (const char* bad : {"", "..", ".hidden", "a/b", "a b", "$(x)",
                            "0123456789012345678901234567890123456789012345678901234567890123456789"}) {
        Options o;
        auto r = parse({"--file-prefix", bad}, o);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().message().find("--file-prefix"), std::string::npos) << r.error().message();
    }
}

TEST(Options, ErrorsNameTheOption) {
    struct Case {
        std::vector<const char*> args;
        const char* expect;
    };
    for (const auto& c : std::vector<Case>{
             {{"--vfio-mode=fast"}, "use one of auto, cdev, group, compat, noiommu"},
             {{"--vfio-mode"}, "needs a value"},
             {{"-a", "nope"}, "'nope' is not a PCI address"},
             {{"-a", "00:03.0,speed=9"}, "unknown device argument"},
             {{"--frobnicate"}, "unknown EAL option"},
             {{"--proc-type=tertiary"}, "use one of primary, secondary, auto"},
             {{"--file-prefix"}, "needs a value"},
             {{"-a", "00:03.0", "-b", "0000:00:03.0"}, "both allowed and blocked"},
         }) {
        Options o;
        auto r = parse(c.args, o);
        ASSERT_FALSE(r) << c.args[0];
        EXPECT_EQ(r.error().err(), EINVAL);
        EXPECT_NE(r.error().message().find(c.expect), std::string::npos) << r.error().message();
    }
}

}  // namespace
}  // namespace vfiokit::eal
