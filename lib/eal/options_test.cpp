#include "vfiokit/eal/options.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

// -a BDF,KEY=VALUE,...: vf_token goes to VFIO, every other pair to the
// driver, in order; the driver checks the keys when it probes.
TEST(Options, AllowCarriesDriverArgumentsAndVfToken) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    Options o;
    auto r = parse({"-a", "00:03.0,dma_mask=0xffffffff,vf_token=2ab74924-c335-45f4-9b16-8569e5b08258,"
                    "mode=fast",
                    "-a", "0000:00:04.0"},
                   o);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(o.allow.size(), 2u);
    EXPECT_EQ(o.allow[0].vf_token, "2ab74924-c335-45f4-9b16-8569e5b08258");
    EXPECT_EQ(o.allow[0].args,
              (std::vector<DeviceArg>{{"dma_mask", "0xffffffff"}, {"mode", "fast"}}));
    EXPECT_TRUE(o.allow[1].args.empty());
    EXPECT_TRUE(o.allow[1].vf_token.empty());
    // An empty value is a value (the driver decides whether it accepts it).
    auto e = parse_allowed_device("0000:00:05.0,flag=");
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ(e->args, (std::vector<DeviceArg>{{"flag", ""}}));
}

// -m and --socket-mem are MiB: a value whose byte count cannot be mapped
// (or would wrap around 64 bits, 2^44 MiB and up) is refused by name.
TEST(Options, MemorySizesOutOfRangeAreRefused) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    for (std::vector<const char*> args : std::vector<std::vector<const char*>>{
             {"-m", "17592186044416"},            // 2^44 MiB: 2^64 bytes, wrapped to 0 before
             {"-m", "134217729"},                 // one MiB above 128 TiB
             {"--socket-mem", "64,17592186044417"},
             {"--socket-mem=0x100000000000"},
         }) {
        Options o;
        auto r = parse(args, o);
        ASSERT_FALSE(r) << args[0] << " " << args.back();
        EXPECT_EQ(r.error().err(), EINVAL);
        EXPECT_NE(r.error().message().find("MiB (128 TiB) a process can address"), std::string::npos)
            << r.error().message();
        EXPECT_NE(r.error().message().find(args[0][1] == 'm' ? "-m" : "--socket-mem"),
                  std::string::npos)
            << r.error().message();
    }
    Options big;
    auto wrap = parse({"-m", "99999999999999999999999"}, big);
    ASSERT_FALSE(wrap);
    EXPECT_NE(wrap.error().message().find("does not fit in 64 bits"), std::string::npos);
    Options ok;
    ASSERT_TRUE(parse({"-m", "134217728"}, ok));  // exactly 128 TiB
    EXPECT_EQ(ok.memory_mb, kMaxMemoryMb);
    Options empty;
    EXPECT_FALSE(parse({"--socket-mem="}, empty));
}

// --base-virtaddr 0 (or any address below vm.mmap_min_addr) cannot hold the
// window: said at parse time, not as a failed mmap later.
TEST(Options, BaseVirtaddrBelowMinimumIsRefused) {
    for (const char* v : {"0", "0x0", "4096", "0xffff"}) {
        Options o;
        auto r = parse({"--base-virtaddr", v}, o);
        ASSERT_FALSE(r) << v;
        EXPECT_NE(r.error().message().find("below 64 KiB"), std::string::npos) << r.error().message();
        EXPECT_NE(r.error().message().find("--base-virtaddr"), std::string::npos);
    }
    Options o;
    ASSERT_TRUE(parse({"--base-virtaddr=0x10000"}, o));
    EXPECT_EQ(o.memory.base_virtaddr, 0x10000u);
}

// The usage text is the table: every option appears once, with its
// argument and help.
TEST(Options, UsageIsGeneratedFromTheTable) {
    const std::string u = options_usage();
    std::vector<std::string> lines;
    for (std::size_t at = 0, nl; (nl = u.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(u.substr(at, nl - at));
    ASSERT_EQ(lines.size(), option_table().size() + 1) << u;  // a title, one line per option
    for (const auto& o : option_table()) {
        std::string head = "  ";
        if (o.short_name != 0)
            head += std::string("-") + o.short_name + (o.name.empty() ? "" : ", ");
        if (!o.name.empty())
            head += "--" + std::string(o.name);
        const auto line = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
            return l.starts_with(head + " ") || l.starts_with(head + "=") ||
                   l.starts_with(head + "[");  // an optional value
        });
        ASSERT_NE(line, lines.end()) << head << " in\n" << u;
        EXPECT_NE(line->find(o.help), std::string::npos) << *line;
        EXPECT_NE(line->find(o.arg), std::string::npos) << *line;
    }
    EXPECT_NE(u.find("  -a, --allow ADDRESS[,vf_token=UUID][,KEY=VALUE...]"), std::string::npos) << u;
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
    // Also with application arguments after "--" (the lab's each_mode
    // runs every program so).
    Options a;
    auto first = parse({"-a", "0000:00:03.0", "--", "-i"}, a);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, 4);  // "-i"
    EXPECT_EQ(a.vfio.mode, vfio::Mode::cdev);
    ::setenv("VFIOKIT_VFIO_MODE", "warp", 1);
    Options q;
    auto bad = parse({}, q);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("VFIOKIT_VFIO_MODE"), std::string::npos);
    ::unsetenv("VFIOKIT_VFIO_MODE");
}

// Applications put their own options after "--" (testpmd always does):
// the environment and the cross-option checks apply to such command lines
// too, not only to those that end with the EAL options.
TEST(Options, EnvironmentAndChecksApplyBeforeAppArguments) {
    ::setenv("VFIOKIT_VFIO_MODE", "cdev", 1);
    Options o;
    auto r = parse({"-l", "0-1", "--", "-i"}, o);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, 4);
    EXPECT_EQ(o.vfio.mode, vfio::Mode::cdev);
    ::unsetenv("VFIOKIT_VFIO_MODE");
    Options p;
    auto both = parse({"-m", "1", "--socket-mem", "1", "--", "-i"}, p);
    ASSERT_FALSE(both);
    EXPECT_NE(both.error().message().find("-m/--socket-mem"), std::string::npos);
    Options q;
    EXPECT_FALSE(parse({"-a", "00:03.0", "-b", "00:03.0", "--"}, q));
}

// What telemetry's /eal/params and /eal/app_params report.
TEST(Options, KeepsTheCommandLineForTelemetry) {
    ::unsetenv("VFIOKIT_VFIO_MODE");
    Options o;
    ASSERT_TRUE(parse({"-l", "0", "--no-telemetry", "--", "-i", "--rxq=2"}, o));
    EXPECT_EQ(o.eal_args, (std::vector<std::string>{"app", "-l", "0", "--no-telemetry"}));
    EXPECT_EQ(o.app_args, (std::vector<std::string>{"-i", "--rxq=2"}));
    EXPECT_FALSE(o.telemetry);
    Options p;
    ASSERT_TRUE(parse({"--telemetry"}, p));
    EXPECT_EQ(p.eal_args, (std::vector<std::string>{"app", "--telemetry"}));
    EXPECT_TRUE(p.app_args.empty());
    EXPECT_TRUE(p.telemetry);
    Options q;
    ASSERT_TRUE(parse({"--"}, q));
    EXPECT_EQ(q.eal_args, (std::vector<std::string>{"app"}));
    EXPECT_TRUE(q.app_args.empty());
    EXPECT_TRUE(q.telemetry);  // DPDK's default
    Options r;
    EXPECT_FALSE(parse({"--no-telemetry=1"}, r));
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
             {{"-a", "00:03.0,speed"}, "'speed' of 0000:00:03.0 is not KEY=VALUE"},
             {{"-a", "00:03.0,x=1,x=2"}, "'x' of 0000:00:03.0 is given twice"},
             {{"-a", "00:03.0", "-a", "0000:00:03.0,x=1"}, "given twice"},
             {{"--no-huge=1"}, "takes no value"},
             {{"-m"}, "needs a value (MIB)"},
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
