#include "vfiokit/eal/log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vfiokit/eal/options.hpp"

namespace vfiokit::log {
namespace {

// Captures what the components write, and puts levels back afterwards.
class Log : public ::testing::Test {
protected:
    void SetUp() override {
        reset_levels();
        set_sink([this](Level l, std::string_view comp, std::string_view line) {
            lines.push_back({l, std::string(comp), std::string(line)});
        });
    }
    void TearDown() override {
        set_sink(nullptr);
        set_timestamp(Timestamp::none);
        reset_levels();
    }
    struct Line {
        Level level;
        std::string component;
        std::string text;
    };
    std::vector<Line> lines;
};

TEST(LogLevel, NamesNumbersAndShortForms) {
    EXPECT_EQ(*parse_level("debug"), Level::debug);
    EXPECT_EQ(*parse_level("DEBUG"), Level::debug);
    EXPECT_EQ(*parse_level("8"), Level::debug);
    EXPECT_EQ(*parse_level("1"), Level::emergency);
    EXPECT_EQ(*parse_level("err"), Level::error);
    EXPECT_EQ(*parse_level("warning"), Level::warning);
    for (const char* bad : {"", "0", "9", "loud", "debug2"}) {
        auto l = parse_level(bad);
        ASSERT_FALSE(l) << bad;
        EXPECT_NE(l.error().message().find("is not a level"), std::string::npos);
    }
    EXPECT_EQ(to_string(Level::notice), "notice");
}

TEST_F(Log, LevelsFilterAndFormat) {
    const Component c("test.alpha");
    EXPECT_EQ(c.level(), Level::info);
    c.debug("hidden {}", 1);
    c.info("port {} up", 3);
    c.warning("ring {:#x} late", 0x40);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].text, "vfiokit: test.alpha: port 3 up");
    EXPECT_EQ(lines[0].component, "test.alpha");
    EXPECT_EQ(lines[1].text, "vfiokit: test.alpha: warning: ring 0x40 late");
    EXPECT_EQ(lines[1].level, Level::warning);
}

TEST_F(Log, SpecsApplyInOrderToExistingAndLaterComponents) {
    const Component bar("test.pci.bar");
    const Component vfio("test.vfio");
    apply(*parse_level_spec("test.pci.*:debug"));
    EXPECT_EQ(bar.level(), Level::debug);
    EXPECT_EQ(vfio.level(), Level::info);
    apply(*parse_level_spec("warning"));  // every component, after the pattern
    EXPECT_EQ(bar.level(), Level::warning);
    apply(*parse_level_spec("^test\\.v.*,debug"));  // a regex
    EXPECT_EQ(vfio.level(), Level::debug);
    EXPECT_EQ(bar.level(), Level::warning);
    // A component registered after the specs gets what they give it, in
    // order: warning from the second, then debug from the regex.
    const Component late("test.virtio");
    EXPECT_EQ(late.level(), Level::debug);
    const Component other("test.other");
    EXPECT_EQ(other.level(), Level::warning);
    late.debug("seen");
    other.info("not seen");
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].component, "test.virtio");
}

TEST_F(Log, ComponentsAreListedAndLeaveWhenDestroyed) {
    auto has = [](std::string_view n) {
        for (const auto& c : components())
            if (c.name == n)
                return true;
        return false;
    };
    {
        const Component c("test.listed");
        EXPECT_TRUE(has("test.listed"));
    }
    EXPECT_FALSE(has("test.listed"));
    // The library's own components exist from start-up.
    EXPECT_TRUE(has("memory")) << "memory.cpp's component is not registered";
}

TEST(LogSpec, OrdinaryPatternsStayAllowed) {
    for (const char* ok : {"^pmd\\.net\\..*,debug", "[+*?]+x{2,8}y*z?,info",
                           "a\\+\\+\\+\\+\\+\\+\\+\\+\\+b,info"})
        EXPECT_TRUE(parse_level_spec(ok)) << ok;
}

TEST(LogSpec, BadSpecsNameWhatIsWrong) {
    struct Case {
        const char* spec;
        const char* why;
    } cases[] = {
        {"pci:", "'' is not a level"},
        {":debug", "the component pattern is empty"},
        {"pci:loud", "'loud' is not a level"},
        {"(,debug", "is not a regular expression"},
        {"12", "'12' is not a level"},
        // glibc's regcomp takes memory exponential in stacked repetitions:
        // refused before it runs (fuzzing found 120 '+' taking 2 GB).
        {"y++++++++++++++++++++++++,debug", "more than 8 repetition operators"},
        {"(((((((((a+)+)+)+)+)+)+)+)+)+,info", "more than 8 repetition operators"},
        {"a{1,1000},info", "an interval above {64}"},
    };
    for (const auto& c : cases) {
        auto s = parse_level_spec(c.spec);
        ASSERT_FALSE(s) << c.spec;
        EXPECT_NE(s.error().message().find(c.why), std::string::npos) << s.error().message();
        EXPECT_NE(s.error().message().find("--log-level"), std::string::npos);
    }
}

TEST_F(Log, TimestampsPrefixTheLine) {
    const Component c("test.time");
    set_timestamp(Timestamp::reltime);
    c.info("a");
    set_timestamp(Timestamp::iso);
    c.info("b");
    ASSERT_EQ(lines.size(), 2u);
    // "[    0.000012] vfiokit: ..."
    EXPECT_EQ(lines[0].text.front(), '[');
    EXPECT_NE(lines[0].text.find("] vfiokit: test.time: a"), std::string::npos) << lines[0].text;
    // "2026-12-02T13:04:05.123456 vfiokit: ..."
    EXPECT_EQ(lines[1].text.find('T'), 10u) << lines[1].text;
    EXPECT_NE(lines[1].text.find(" vfiokit: test.time: b"), std::string::npos) << lines[1].text;
    EXPECT_FALSE(parse_timestamp("ctime"));
    EXPECT_EQ(*parse_timestamp(""), Timestamp::reltime);
}

TEST(LogSyslog, Facilities) {
    EXPECT_TRUE(parse_syslog_facility("local3"));
    EXPECT_TRUE(parse_syslog_facility(""));
    auto f = parse_syslog_facility("local9");
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message().find("not a syslog facility"), std::string::npos);
}

TEST(LogOptions, EalOptionsCarryTheSpecs) {
    const char* argv[] = {"app", "--log-level=pci.*:debug", "--log-level", "7",
                          "--log-timestamp", "--syslog=local1", "--", "x"};
    eal::Options o;
    auto first = eal::parse_options(8, argv, o);
    ASSERT_TRUE(first) << first.error().message();
    EXPECT_EQ(*first, 7);
    ASSERT_EQ(o.log_levels.size(), 2u);
    EXPECT_EQ(o.log_levels[0].pattern, "pci.*");
    EXPECT_EQ(o.log_levels[0].level, Level::debug);
    EXPECT_EQ(o.log_levels[1].match, LevelSpec::Match::all);
    EXPECT_EQ(o.log_timestamp, Timestamp::reltime);
    EXPECT_TRUE(o.syslog_facility.has_value());

    eal::Options bad;
    const char* argv2[] = {"app", "--log-level=vfio:chatty"};
    auto r = eal::parse_options(2, argv2, bad);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("'chatty' is not a level"), std::string::npos);
    // An optional value is only given with '=': the next word is not it.
    const char* argv3[] = {"app", "--log-timestamp", "iso"};
    eal::Options o3;
    auto r3 = eal::parse_options(3, argv3, o3);
    ASSERT_FALSE(r3);
    EXPECT_NE(r3.error().message().find("option iso: unknown EAL option"), std::string::npos)
        << r3.error().message();
}

}  // namespace
}  // namespace vfiokit::log
