#include "vfiokit/eal/lcore.hpp"

#include <pthread.h>
#include <sched.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "vfiokit/eal/options.hpp"

namespace vfiokit::eal {
namespace {

using V = std::vector<LcoreCpus>;

// What the parsers accept, with DPDK's meaning.
TEST(LcoreParse, CorelistMaskAndLcores) {
    EXPECT_EQ(*parse_corelist("0-3,6"), (V{{0, {0}}, {1, {1}}, {2, {2}}, {3, {3}}, {6, {6}}}));
    EXPECT_EQ(*parse_corelist("5,1"), (V{{1, {1}}, {5, {5}}}));  // sorted by id
    EXPECT_EQ(*parse_coremask("0xf"), *parse_corelist("0-3"));
    EXPECT_EQ(*parse_coremask("A"), (V{{1, {1}}, {3, {3}}}));
    // Bit 64 and up: masks longer than a 64-bit word.
    EXPECT_EQ(*parse_coremask("0x10000000000000001"), (V{{0, {0}}, {64, {64}}}));
    EXPECT_EQ(*parse_lcores("0@1,(2-3)@(4-5),6"),
              (V{{0, {1}}, {2, {4, 5}}, {3, {4, 5}}, {6, {6}}}));
    EXPECT_EQ(*parse_lcores("(0,6)"), (V{{0, {0}}, {6, {6}}}));
    EXPECT_EQ(*parse_lcores("7-8"), (V{{7, {7}}, {8, {8}}}));
    EXPECT_EQ(*parse_lcores("1,2@(5-7),(3-5)@(0,2)"),
              (V{{1, {1}}, {2, {5, 6, 7}}, {3, {0, 2}}, {4, {0, 2}}, {5, {0, 2}}}));
    EXPECT_EQ(*parse_lcores("(0-1)@0"), (V{{0, {0}}, {1, {0}}}));  // two lcores, one CPU
}

// Bad input fails naming the option and what is wrong with it.
TEST(LcoreParse, BadInputNamesTheOptionAndThePart) {
    struct Case {
        Result<V> r;
        const char* want;
    } cases[] = {
        {parse_corelist(""), "expected CPU"},
        {parse_corelist("1,"), "expected CPU"},
        {parse_corelist("3-1"), "range 3-1 runs backwards"},
        {parse_corelist("0-2,2"), "lcore 2 is given twice"},
        {parse_corelist("1;2"), "expected ',' or '-'"},
        {parse_corelist("128"), "lcore 128 (CPU 128): lcore ids must be below 128"},
        {parse_corelist("0-4000000000"), "is above 1023"},
        {parse_coremask("0x"), "is not a hex mask"},
        {parse_coremask("0xg"), "is not a hex mask ('g')"},
        {parse_coremask("0"), "sets no bit"},
        {parse_coremask("0x100000000000000000000000000000000"), "sets bit 128"},
        {parse_lcores("0@"), "expected CPU"},
        {parse_lcores("(0-1"), "expected ',' or ')'"},
        {parse_lcores("0@1,0@2"), "lcore 0 is given twice (CPU 1 and CPU 2)"},
        {parse_lcores("0@1-2"), "expected ',' or '@'"},
        {parse_lcores("200@1"), "lcore 200 (CPU 1): lcore ids must be below 128"},
    };
    const char* opts[] = {"-l", "-l", "-l", "-l", "-l", "-l", "-l", "-c",
                          "-c", "-c", "-c", "--lcores", "--lcores", "--lcores", "--lcores",
                          "--lcores"};
    for (std::size_t i = 0; i < std::size(cases); ++i) {
        ASSERT_FALSE(cases[i].r) << i;
        const std::string m = cases[i].r.error().message();
        EXPECT_EQ(cases[i].r.error().err(), EINVAL) << m;
        EXPECT_NE(m.find(std::string("option ") + opts[i] + ":"), std::string::npos) << m;
        EXPECT_NE(m.find(cases[i].want), std::string::npos) << i << ": " << m;
    }
}

Result<int> parse(std::vector<const char*> args, Options& o) {
    args.insert(args.begin(), "app");
    return parse_options(static_cast<int>(args.size()), args.data(), o);
}

TEST(LcoreOptions, RowsOfTheOptionTable) {
    Options o;
    ASSERT_TRUE(parse({"-l", "1-2", "--main-lcore", "2"}, o));
    EXPECT_EQ(o.lcores, (V{{1, {1}}, {2, {2}}}));
    EXPECT_EQ(o.main_lcore_id(), 2u);
    Options c;
    ASSERT_TRUE(parse({"-c0x6"}, c));
    EXPECT_EQ(c.main_lcore_id(), 1u);  // the lowest by default
    Options l;
    ASSERT_TRUE(parse({"--lcores=0@1,(2-3)@(4-5)"}, l));
    EXPECT_EQ(l.lcores.size(), 3u);
    Options none;
    ASSERT_TRUE(parse({}, none));
    EXPECT_TRUE(none.lcores.empty());
    EXPECT_EQ(none.main_lcore_id(), 0u);

    Options twice;
    auto t = parse({"-l", "0", "-c", "1"}, twice);
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message().find("use one of -l, -c, --lcores"), std::string::npos);
    Options outside;
    auto m = parse({"-l", "0-1", "--main-lcore", "5"}, outside);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().message().find("--main-lcore: 5 is not among the lcores (0-1)"),
              std::string::npos)
        << m.error().message();
    Options big;
    EXPECT_FALSE(parse({"--main-lcore", "128"}, big));
    Options junk;
    EXPECT_FALSE(parse({"--main-lcore", "x"}, junk));
    EXPECT_NE(options_usage().find("--lcores MAP"), std::string::npos);
}

std::vector<unsigned> allowed() {
    cpu_set_t s;
    CPU_ZERO(&s);
    EXPECT_EQ(::sched_getaffinity(0, sizeof(s), &s), 0);
    std::vector<unsigned> out;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &s))
            out.push_back(c);
    return out;
}

std::vector<unsigned> this_thread_cpus() {
    cpu_set_t s;
    CPU_ZERO(&s);
    EXPECT_EQ(::pthread_getaffinity_np(::pthread_self(), sizeof(s), &s), 0);
    std::vector<unsigned> out;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &s))
            out.push_back(c);
    return out;
}

// Four lcores over whatever CPUs this machine lets the process use: ids
// 0..3 on the allowed CPUs in turn (lcores may share a CPU).
V four_lcores() {
    const auto cpus = allowed();
    V out;
    for (unsigned i = 0; i < 4; ++i)
        out.push_back({i, {cpus[i % cpus.size()]}});
    return out;
}

TEST(Lcores, WorkersRunPinnedWithTheirIdAndReturnTheirValue) {
    ASSERT_EQ(lcore_id(), kLcoreIdAny);
    const auto before = this_thread_cpus();
    const V layout = four_lcores();
    auto l = Lcores::start(layout, 1);
    ASSERT_TRUE(l) << l.error().message();
    Lcores& lc = **l;
    EXPECT_EQ(lcore_id(), 1u);  // this thread is the main lcore
    EXPECT_EQ(this_thread_cpus(), layout[1].cpus);
    EXPECT_EQ(lc.main_lcore(), 1u);
    EXPECT_EQ(lc.all(), (std::vector<unsigned>{0, 1, 2, 3}));
    EXPECT_EQ(lc.workers(), (std::vector<unsigned>{0, 2, 3}));
    EXPECT_EQ(lc.count(), 4u);
    EXPECT_EQ(lc.cpus(2), layout[2].cpus);
    EXPECT_TRUE(lc.cpus(9).empty());

    std::atomic<unsigned> seen[4] = {};
    std::vector<unsigned> cpus_seen[4];
    for (unsigned id : lc.workers())
        ASSERT_TRUE(lc.launch(id, [&, id] {
            seen[id] = lcore_id();
            cpus_seen[id] = this_thread_cpus();
            return static_cast<int>(100 + id);
        }));
    for (unsigned id : lc.workers()) {
        auto r = lc.wait(id);
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(*r, static_cast<int>(100 + id));
        EXPECT_EQ(seen[id].load(), id);
        EXPECT_EQ(cpus_seen[id], layout[id].cpus) << "lcore " << id;
        EXPECT_EQ(lc.state(id), LcoreState::wait);
    }
    // Nothing launched: wait returns 0 at once. Launch again after a wait.
    EXPECT_EQ(*lc.wait(2), 0);
    ASSERT_TRUE(lc.launch(2, [] { return 7; }));
    EXPECT_EQ(*lc.wait(2), 7);
    l->reset();
    EXPECT_EQ(lcore_id(), kLcoreIdAny);  // given back with the affinity
    EXPECT_EQ(this_thread_cpus(), before);
}

TEST(Lcores, BusyMainAndUnknownLcoresAreRefused) {
    auto l = Lcores::start(four_lcores(), 0);
    ASSERT_TRUE(l) << l.error().message();
    Lcores& lc = **l;
    std::atomic<bool> go{false};
    ASSERT_TRUE(lc.launch(3, [&] {
        while (!go)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return 3;
    }));
    EXPECT_EQ(lc.state(3), LcoreState::running);
    auto busy = lc.launch(3, [] { return 0; });
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.error().err(), EBUSY);
    EXPECT_NE(busy.error().message().find("lcore 3: it is running a function"), std::string::npos)
        << busy.error().message();
    go = true;
    while (lc.state(3) != LcoreState::finished)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto unwaited = lc.launch(3, [] { return 0; });
    ASSERT_FALSE(unwaited);
    EXPECT_EQ(unwaited.error().err(), EBUSY);
    EXPECT_EQ(*lc.wait(3), 3);

    auto main = lc.launch(0, [] { return 0; });
    ASSERT_FALSE(main);
    EXPECT_EQ(main.error().err(), EINVAL);
    EXPECT_NE(main.error().message().find("lcore 0: it is the main lcore"), std::string::npos);
    EXPECT_FALSE(lc.wait(0));
    auto unknown = lc.launch(9, [] { return 0; });
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("lcore 9: not an lcore of this EAL (lcores 0-3)"),
              std::string::npos)
        << unknown.error().message();
    EXPECT_FALSE(lc.launch(1, {}));  // no function
}

TEST(Lcores, DestructorWaitsForRunningFunctions) {
    std::atomic<int> done{0};
    {
        auto l = Lcores::start(four_lcores(), 0);
        ASSERT_TRUE(l);
        for (unsigned id : (*l)->workers())
            ASSERT_TRUE((*l)->launch(id, [&] {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                ++done;
                return 0;
            }));
    }
    EXPECT_EQ(done.load(), 3);
    EXPECT_EQ(lcore_id(), kLcoreIdAny);
}

TEST(Lcores, StartChecksCpusIdsAndTheMainLcore) {
    const auto cpus = allowed();
    // A CPU outside the affinity mask: the one after the highest allowed.
    if (cpus.back() + 1 < CPU_SETSIZE) {
        const unsigned off = cpus.back() + 1;
        auto r = Lcores::start({{0, {cpus[0]}}, {1, {off}}}, 0);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().err(), EINVAL);
        const std::string m = r.error().message();
        EXPECT_NE(m.find("lcore 1: CPU " + std::to_string(off) +
                         " is not one this process may run on"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("this process may use CPU " + format_id_list(cpus)), std::string::npos)
            << m;
    } else {
        ADD_FAILURE() << "every CPU id is allowed: no CPU outside the mask to test with";
    }
    auto dup = Lcores::start({{0, {cpus[0]}}, {0, {cpus[0]}}}, 0);
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().message().find("lcore 0 is given twice"), std::string::npos);
    auto big = Lcores::start({{kMaxLcores, {cpus[0]}}}, kMaxLcores);
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().message().find("lcore ids must be below 128"), std::string::npos);
    auto nomain = Lcores::start({{0, {cpus[0]}}, {1, {cpus[0]}}}, 4);
    ASSERT_FALSE(nomain);
    EXPECT_NE(nomain.error().message().find("main lcore 4 is not among the lcores (0-1)"),
              std::string::npos)
        << nomain.error().message();
    EXPECT_EQ(lcore_id(), kLcoreIdAny);  // nothing stayed
    // Empty: the main lcore alone, on every allowed CPU.
    auto alone = Lcores::start({}, 5);
    ASSERT_TRUE(alone) << alone.error().message();
    EXPECT_EQ((*alone)->all(), (std::vector<unsigned>{5}));
    EXPECT_EQ((*alone)->cpus(5), cpus);
    EXPECT_EQ(lcore_id(), 5u);
    // One per thread.
    auto second = Lcores::start({}, 0);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().err(), EBUSY);
}

TEST(Lcores, FormatIdList) {
    EXPECT_EQ(format_id_list({}), "");
    EXPECT_EQ(format_id_list({0, 1, 2, 3, 6, 8, 9}), "0-3,6,8-9");
}

}  // namespace
}  // namespace vfiokit::eal
