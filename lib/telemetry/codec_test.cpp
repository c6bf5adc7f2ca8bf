// The codec and the command table, without sockets: requests parsed
// strictly, replies in DPDK's shapes, and a fuzz that every request,
// however malformed, gets one valid JSON reply.
#include <gtest/gtest.h>

#include <unistd.h>

#include <random>
#include <stdexcept>

#include "json_check.hpp"
#include "vfiokit/telemetry/telemetry.hpp"

namespace vfiokit::telemetry {
namespace {

using testing::valid_json;

TEST(TelemetryJson, DumpsCompactWithKeysInOrder) {
    Json d = Json::object();
    d.set("z", 1).set("a", -2).set("u", std::uint64_t{18446744073709551615ULL});
    d.set("s", "x").set("t", true).set("n", Json());
    Json a = Json::array();
    a.push(1).push("two").push(Json::object());
    d.set("arr", std::move(a)).set("empty", Json::array());
    EXPECT_EQ(d.dump(),
              R"({"z":1,"a":-2,"u":18446744073709551615,"s":"x","t":true,"n":null,)"
              R"("arr":[1,"two",{}],"empty":[]})");
}

TEST(TelemetryJson, EscapesQuotesControlAndNonAsciiBytes) {
    const std::string raw = std::string("a\"b\\c\n\t\x01") + "\xc3\xa9" + "\x7f";
    const std::string out = Json(raw).dump();
    EXPECT_EQ(out, R"("a\"b\\c\n\t\u0001\u00c3\u00a9\u007f")");
    EXPECT_TRUE(valid_json(out));
}

TEST(TelemetryJson, HexForMasksAndAddresses) {
    EXPECT_EQ(hex_json(0).dump(), R"("0x0")");
    EXPECT_EQ(hex_json(0x10000).dump(), R"("0x10000")");
}

TEST(TelemetryCodec, ParsesNameAndParams) {
    auto c = parse_command("/ethdev/stats,0");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->name, "/ethdev/stats");
    EXPECT_EQ(c->params, "0");
    EXPECT_TRUE(c->has_params);
    // Only the first comma separates: the rest is the handler's.
    c = parse_command("/ethdev/xstats,1,hide_zero=true\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->name, "/ethdev/xstats");
    EXPECT_EQ(c->params, "1,hide_zero=true");
    c = parse_command("/");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->name, "/");
    EXPECT_FALSE(c->has_params);
    c = parse_command("/help,\r\n");
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->has_params);
    EXPECT_EQ(c->params, "");
}

TEST(TelemetryCodec, RefusesWhatIsNotACommand) {
    for (std::string_view bad : {std::string_view(""), std::string_view("\n"),
                                 std::string_view("ethdev/list"), std::string_view(" /"),
                                 std::string_view("/a\0b", 4), std::string_view("/\xff"),
                                 std::string_view("/a\tb")}) {
        auto c = parse_command(bad);
        ASSERT_FALSE(c) << "accepted '" << bad << "'";
        EXPECT_EQ(c.error().err(), EINVAL);
    }
    const std::string name55 = "/" + std::string(kMaxCommandLen - 1, 'a');
    EXPECT_TRUE(parse_command(name55));
    auto c = parse_command(name55 + "a");
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("longer than 55"), std::string::npos) << c.error().message();
    c = parse_command("/x," + std::string(kMaxRequest, 'p'));
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("1026 bytes"), std::string::npos) << c.error().message();
    EXPECT_TRUE(parse_command("/x," + std::string(kMaxRequest - 3, 'p')));
}

TEST(TelemetryCodec, HelloAsDpdkWritesIt) {
    EXPECT_EQ(hello_message("vfiokit 0.1.0", 42, 65536),
              R"({"version":"vfiokit 0.1.0","pid":42,"max_output_len":65536})");
    EXPECT_TRUE(version_string().starts_with("vfiokit "));
}

TEST(TelemetryCodec, ErrorAndOversizedReplies) {
    EXPECT_EQ(error_message("/x", "why"), R"({"/x":null,"error":"why"})");
    EXPECT_EQ(error_message("", "why"), R"({"error":"why"})");
    const std::string r = reply_message("/big", Json(std::string(200, 'x')), 100);
    EXPECT_TRUE(r.starts_with(R"({"/big":null,"error":"the reply has 211 bytes)")) << r;
}

class CommandsTest : public ::testing::Test {
protected:
    Commands c;
};

TEST_F(CommandsTest, BuiltinsAsDpdk) {
    EXPECT_EQ(c.reply("/"), R"({"/":["/","/help","/info"]})");
    EXPECT_EQ(c.reply("/info"), std::string(R"({"/info":{"version":")") +
                                    std::string(version_string()) + R"(","pid":)" +
                                    std::to_string(::getpid()) + R"(,"max_output_len":65536}})");
    EXPECT_EQ(c.reply("/help,/info"),
              R"({"/help":{"/info":"Returns DPDK Telemetry information. Takes no parameters"}})");
    EXPECT_TRUE(c.reply("/help").starts_with(R"({"/help":null,"error":")"));
    EXPECT_TRUE(c.reply("/help,/nope").starts_with(R"({"/help":null,"error":")"));
}

TEST_F(CommandsTest, AddChecksNamesAndDuplicates) {
    auto h = [](std::string_view p) -> Result<Json> { return Json(p); };
    ASSERT_TRUE(c.add("/test/echo", "echo", h));
    EXPECT_EQ(c.add("/test/echo", "again", h).error().err(), EEXIST);
    for (const std::string& bad : std::vector<std::string>{
             "", "test", "/a,b", "/a b", "/" + std::string(kMaxCommandLen, 'x')})
        EXPECT_EQ(c.add(bad, "bad", h).error().err(), EINVAL) << bad;
    EXPECT_EQ(c.add("/null", "no handler", Handler()).error().err(), EINVAL);
    EXPECT_EQ(c.reply("/test/echo,a\"b"), R"({"/test/echo":"a\"b"})");
    EXPECT_EQ(c.reply("/"), R"({"/":["/","/help","/info","/test/echo"]})");
}

TEST_F(CommandsTest, FailuresBecomeErrorReplies) {
    ASSERT_TRUE(c.add("/test/fails", "fails", [](std::string_view) -> Result<Json> {
        return fail(Error(EIO, "the device said no").hint("ask again"));
    }));
    ASSERT_TRUE(c.add("/test/throws", "throws", [](std::string_view) -> Result<Json> {
        throw std::runtime_error("boom");
    }));
    const std::string f = c.reply("/test/fails");
    EXPECT_TRUE(f.starts_with(R"({"/test/fails":null,"error":"the device said no: )")) << f;
    EXPECT_NE(f.find("ask again"), std::string::npos) << f;
    EXPECT_EQ(c.reply("/test/throws"), R"({"/test/throws":null,"error":"the command failed: boom"})");
    const std::string u = c.reply("/nope,1");
    EXPECT_EQ(u, R"({"/nope":null,"error":"unknown command /nope; '/' lists the commands"})");
    const std::string m = c.reply("nope");
    EXPECT_TRUE(m.starts_with(R"({"error":"telemetry request: a command starts with '/')")) << m;
}

// Requests made of random bytes, and valid commands with bytes flipped,
// cut or appended: each gets exactly one reply, valid JSON, and the table
// keeps answering correctly afterwards.
TEST_F(CommandsTest, FuzzEveryRequestGetsOneValidJsonReply) {
    ASSERT_TRUE(c.add("/test/echo", "echo", [](std::string_view p) -> Result<Json> {
        return Json(p);
    }));
    const std::vector<std::string> seeds = {"/", "/info", "/help,/info", "/test/echo,abc",
                                            "/help,/test/echo"};
    std::mt19937 rng(20261124);
    auto byte = [&] { return static_cast<char>(rng() & 0xff); };
    for (int i = 0; i < 20000; ++i) {
        std::string msg;
        switch (i % 4) {
        case 0: {  // random bytes, any length up to past the limit
            msg.resize(rng() % (kMaxRequest + 64));
            for (char& ch : msg)
                ch = byte();
            break;
        }
        case 1: {  // a valid command with bytes flipped
            msg = seeds[rng() % seeds.size()];
            for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k)
                msg[rng() % msg.size()] = byte();
            break;
        }
        case 2:  // cut short
            msg = seeds[rng() % seeds.size()];
            msg.resize(rng() % (msg.size() + 1));
            break;
        default:  // printable junk appended
            msg = seeds[rng() % seeds.size()];
            for (unsigned k = rng() % 80; k > 0; --k)
                msg += static_cast<char>(0x20 + rng() % 95);
        }
        const std::string r = c.reply(msg);
        ASSERT_TRUE(valid_json(r)) << "request of " << msg.size() << " bytes: reply " << r;
        ASSERT_TRUE(r.starts_with("{")) << r;
    }
    EXPECT_EQ(c.reply("/test/echo,still"), R"({"/test/echo":"still"})");
}

}  // namespace
}  // namespace vfiokit::telemetry
