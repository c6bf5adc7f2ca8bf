// The runtime directory, the primary's lock and roles, and the shared
// runtime on the host: a primary in a child process with --no-huge memory,
// this process as its secondary mapping that memory at the same addresses.
#include <sys/mman.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "lab_env.hpp"
#include "mp_test_util.hpp"
#include "vfiokit/eal/mp.hpp"

namespace vfiokit::eal::mp {
namespace {

using namespace std::chrono_literals;
using test::Pipe;
using test::TempDir;

bool contains(const std::string& s, std::string_view what) { return s.find(what) != s.npos; }

TEST(RuntimeDir, DefaultBaseFollowsDpdk) {
    auto b = default_runtime_base();
    ASSERT_TRUE(b);
    if (::geteuid() == 0)
        EXPECT_EQ(*b, "/var/run/vfiokit");
    else
        EXPECT_TRUE(b->ends_with("/vfiokit") || b->starts_with("/tmp/vfiokit-")) << *b;
}

TEST(RuntimeDir, IsCreatedPrivateAndMustStayPrivate) {
    TempDir tmp;
    const std::string base = tmp.path() + "/nested/base";
    auto d = open_runtime_dir("p1", base);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->path, base + "/p1");
    EXPECT_EQ(d->socket_path(), base + "/p1/mp_socket");
    struct stat st {};
    ASSERT_EQ(::stat(d->path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_EQ(::chmod(d->path.c_str(), 0755), 0);
    auto open_dir = open_runtime_dir("p1", base);
    ASSERT_FALSE(open_dir);
    EXPECT_EQ(open_dir.error().err(), EPERM);
    EXPECT_TRUE(contains(open_dir.error().message(), "chmod 0700")) << open_dir.error().message();
    EXPECT_FALSE(open_runtime_dir("../escape", base));
    EXPECT_FALSE(open_runtime_dir("", base));
    // A symlink planted where the directory belongs is not followed.
    ASSERT_EQ(::symlink("/tmp", (base + "/p2").c_str()), 0);
    auto link = open_runtime_dir("p2", base);
    ASSERT_FALSE(link);
    EXPECT_TRUE(contains(link.error().message(), "symlink")) << link.error().message();
}

// The base is checked without following a symlink: with the /tmp fallback
// another user could plant one pointing to a directory of theirs.
TEST(RuntimeDir, BaseSymlinkIsRefused) {
    TempDir tmp;
    const std::string real = tmp.path() + "/real", link = tmp.path() + "/link";
    ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
    ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
    auto d = open_runtime_dir("p", link);
    ASSERT_FALSE(d) << "a symlinked base was followed";
    EXPECT_EQ(d.error().err(), ENOTDIR);
    EXPECT_TRUE(contains(d.error().message(), "runtime base directory " + link + " is a symlink"))
        << d.error().message();
}

// A base that others may write to lets them rename our directory away
// and put theirs in its place.
TEST(RuntimeDir, BaseWritableByOthersIsRefused) {
    TempDir tmp;
    const std::string base = tmp.path() + "/base";
    ASSERT_EQ(::mkdir(base.c_str(), 0700), 0);
    ASSERT_EQ(::chmod(base.c_str(), 0777), 0);
    auto d = open_runtime_dir("p", base);
    ASSERT_FALSE(d) << "a base of mode 0777 was used";
    EXPECT_EQ(d.error().err(), EPERM);
    EXPECT_TRUE(contains(d.error().message(), "has mode 0777")) << d.error().message();
    ASSERT_EQ(::chmod(base.c_str(), 0755), 0);
    EXPECT_TRUE(open_runtime_dir("p", base));
}

TEST(RuntimeDir, BaseOfAnotherUserIsRefused) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to give the base to uid 65534";
    TempDir tmp;
    const std::string base = tmp.path() + "/base";
    ASSERT_EQ(::mkdir(base.c_str(), 0700), 0);
    ASSERT_EQ(::chown(base.c_str(), 65534, 65534), 0);
    auto d = open_runtime_dir("p", base);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().err(), EPERM);
    EXPECT_TRUE(contains(d.error().message(), "belongs to uid 65534")) << d.error().message();
}

// Once checked, the directory is used through its fd: the lock and the
// socket land in the directory that was checked, even after it was
// renamed and another put at its path.
TEST(RuntimeDir, SwappedDirectoryIsNotUsed) {
    TempDir tmp;
    auto d = open_runtime_dir("p", tmp.path());
    ASSERT_TRUE(d) << d.error().message();
    const std::string moved = tmp.path() + "/moved";
    ASSERT_EQ(::rename(d->path.c_str(), moved.c_str()), 0);
    ASSERT_EQ(::mkdir(d->path.c_str(), 0700), 0);  // the impostor
    auto lock = PrimaryLock::acquire(*d);
    ASSERT_TRUE(lock) << lock.error().message();
    auto s = Server::listen(*d, *lock);
    ASSERT_TRUE(s) << s.error().message();
    struct stat st {};
    EXPECT_EQ(::lstat((moved + "/primary.lock").c_str(), &st), 0) << "the lock went elsewhere";
    EXPECT_EQ(::lstat((moved + "/mp_socket").c_str(), &st), 0) << "the socket went elsewhere";
    EXPECT_NE(::lstat((d->path + "/primary.lock").c_str(), &st), 0);
    EXPECT_NE(::lstat((d->path + "/mp_socket").c_str(), &st), 0);
    auto who = running_primary(*d);
    ASSERT_TRUE(who && *who);
    EXPECT_EQ(**who, ::getpid());
    (*s)->stop();
    EXPECT_NE(::lstat((moved + "/mp_socket").c_str(), &st), 0) << "stop() unlinks its socket";
}

// flock belongs to the open file description, so two acquisitions in one
// process conflict just as two processes do.
TEST(Roles, PrimarySecondaryAndAutoFollowTheLock) {
    TempDir tmp;
    auto d = open_runtime_dir("roles", tmp.path());
    ASSERT_TRUE(d);
    auto none = running_primary(*d);
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    auto sec = claim_role(ProcType::secondary, *d);
    ASSERT_FALSE(sec);
    EXPECT_EQ(sec.error().err(), ENOENT);
    EXPECT_TRUE(contains(sec.error().message(), "no primary with prefix roles is running"));
    {
        auto prim = claim_role(ProcType::automatic, *d);
        ASSERT_TRUE(prim) << prim.error().message();
        EXPECT_EQ(prim->type, ProcType::primary);
        EXPECT_TRUE(prim->lock);
        auto who = running_primary(*d);
        ASSERT_TRUE(who && *who);
        EXPECT_EQ(**who, ::getpid());
        auto second = claim_role(ProcType::primary, *d);
        ASSERT_FALSE(second);
        EXPECT_EQ(second.error().err(), EBUSY);
        EXPECT_TRUE(contains(second.error().message(),
                             "a primary with prefix roles is running (pid " +
                                 std::to_string(::getpid()) + ")"))
            << second.error().message();
        auto aut = claim_role(ProcType::automatic, *d);
        ASSERT_TRUE(aut);
        EXPECT_EQ(aut->type, ProcType::secondary);
        EXPECT_FALSE(aut->lock);
        EXPECT_TRUE(claim_role(ProcType::secondary, *d));
    }
    // Released with the Role: auto is primary again.
    auto again = claim_role(ProcType::automatic, *d);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->type, ProcType::primary);
}

// The primary's memory for these tests: 4 KiB pages (the host has no
// hugepages reserved) in a small window.
// The windows sit below 2 GiB, where every build may map: ThreadSanitizer's
// shadow and metadata take most of 0x8000000000-0x550000000000 (a process
// that maps there is killed; 0x300000000000, the old base, is its metadata),
// AddressSanitizer's 2 GiB-16 TiB; programs and libraries load far above.
MemoryOptions small_memory(std::uint64_t base = 0x40000000ULL) {
    MemoryOptions o;
    o.no_huge = true;
    o.base_virtaddr = base;
    o.window = 64ULL << 20;
    return o;
}

struct PrimaryChild {
    pid_t pid = -1;
    std::uint64_t first_va = 0;  // a pattern of 0x5a bytes at the start of segment 0
};

// A primary in a child process: memory with `nseg` segments of `seg_len`,
// "eal.memory" and "eal.info", and "test.check" which answers whether the
// first bytes of segment 0 read "written by the secondary".
PrimaryChild start_primary(const RuntimeDir& dir, std::size_t nseg, std::uint64_t seg_len) {
    Pipe ready;
    PrimaryChild pc;
    pc.pid = test::fork_child([&] {
        auto lock = PrimaryLock::acquire(dir);
        auto m = Memory::create(small_memory());
        if (!lock || !m)
            return 20;
        for (std::size_t i = 0; i < nseg; ++i)
            if (!(*m)->add(seg_len))
                return 21;
        auto* p = reinterpret_cast<char*>((*m)->segments()[0]->va);
        std::memset(p, 0x5a, 64);
        auto s = Server::listen(dir, *lock);
        if (!s)
            return 22;
        serve_runtime(**s, **m, RuntimeFacts{dir.prefix, "noiommu", "forced by the test"});
        (*s)->set_info_provider([] { return std::string("{\"container\": \"none\"}"); });
        (*s)->handle("test.check", [p](const Request&, const Peer&) -> Result<Reply> {
            const bool ok = std::memcmp(p, "written by the secondary", 24) == 0;
            return Reply{ok ? "yes" : "no", {}, {}};
        });
        if (!(*s)->start())
            return 23;
        (void)!::write(ready.w.get(), &p, sizeof p);
        for (;;)
            ::pause();
    });
    ready.w.reset();
    pollfd pf{ready.r.get(), POLLIN, 0};
    char* va = nullptr;
    if (::poll(&pf, 1, 10000) != 1 || ::read(ready.r.get(), &va, sizeof va) != sizeof va) {
        ::kill(pc.pid, SIGKILL);
        test::wait_child(pc.pid);
        pc.pid = -1;
    }
    pc.first_va = reinterpret_cast<std::uint64_t>(va);
    return pc;
}

struct SharedFixture : ::testing::Test {
    void SetUp() override {
        auto d = open_runtime_dir("shared", tmp.path());
        ASSERT_TRUE(d);
        dir = *d;
    }
    void TearDown() override {
        if (primary.pid > 0) {
            ::kill(primary.pid, SIGKILL);
            test::wait_child(primary.pid);
        }
    }
    TempDir tmp;
    RuntimeDir dir;
    PrimaryChild primary;
};

TEST_F(SharedFixture, SecondaryMapsThePrimarysMemoryAtTheSameAddresses) {
    primary = start_primary(dir, 2, 1 << 20);
    ASSERT_GT(primary.pid, 0);
    const int fds_before = testing::open_fds();
    {
        auto c = Client::connect(dir);
        ASSERT_TRUE(c) << c.error().message();
        auto m = attach_memory(**c);
        ASSERT_TRUE(m) << m.error().message();
        EXPECT_TRUE((*m)->attached());
        ASSERT_EQ((*m)->segments().size(), 2u);
        EXPECT_EQ((*m)->window_base(), small_memory().base_virtaddr);
        EXPECT_EQ((*m)->window_size(), small_memory().window);
        auto* p = reinterpret_cast<unsigned char*>(primary.first_va);
        EXPECT_EQ((*m)->segments()[0]->va, primary.first_va);
        EXPECT_EQ(p[0], 0x5a);  // the primary's bytes, at the primary's address
        EXPECT_EQ((*m)->virt2iova(p + 100), primary.first_va + 100);  // va mode: IOVA = VA
        std::memcpy(p, "written by the secondary", 24);
        auto r = (*c)->request("test.check");
        ASSERT_TRUE(r) << r.error().message();
        EXPECT_EQ(r->payload, "yes");
        auto add = (*m)->add(4096);
        ASSERT_FALSE(add);
        EXPECT_EQ(add.error().err(), ENOTSUP);
    }
    // Detaching leaves nothing: the window is free again, every fd closed.
    void* again = ::mmap(reinterpret_cast<void*>(small_memory().base_virtaddr), small_memory().window,
                         PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    EXPECT_EQ(again, reinterpret_cast<void*>(small_memory().base_virtaddr));
    ::munmap(again, small_memory().window);
    EXPECT_EQ(testing::open_fds(), fds_before);
}

// 300 segments: more than the 253 fds one message can carry, so the
// secondary asks twice.
TEST_F(SharedFixture, ManySegmentsCrossSeveralReplies) {
    primary = start_primary(dir, 300, 4096);
    ASSERT_GT(primary.pid, 0);
    auto c = Client::connect(dir);
    ASSERT_TRUE(c);
    auto m = attach_memory(**c);
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ((*m)->segments().size(), 300u);
    EXPECT_EQ(reinterpret_cast<unsigned char*>(primary.first_va)[63], 0x5a);
}

TEST_F(SharedFixture, ATakenAddressFailsNamingTheSegmentAndLeavesNothing) {
    primary = start_primary(dir, 2, 1 << 20);
    ASSERT_GT(primary.pid, 0);
    // Something of ours where the primary's second segment is.
    const std::uint64_t second = primary.first_va + (1 << 20);
    void* squat = ::mmap(reinterpret_cast<void*>(second + 8192), 4096, PROT_READ,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT_EQ(squat, reinterpret_cast<void*>(second + 8192));
    auto c = Client::connect(dir);
    ASSERT_TRUE(c);
    const int fds_before = testing::open_fds();
    auto m = attach_memory(**c);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().err(), EEXIST);
    char range[64];
    std::snprintf(range, sizeof range, "segment [0x%llx, 0x%llx) is taken in this process",
                  static_cast<unsigned long long>(second),
                  static_cast<unsigned long long>(second + (1 << 20)));
    EXPECT_TRUE(contains(m.error().message(), range)) << m.error().message();
    EXPECT_TRUE(contains(m.error().message(), "--base-virtaddr")) << m.error().message();
    EXPECT_EQ(testing::open_fds(), fds_before) << "the received fds are closed";
    // The first segment, mapped before the failure, was undone.
    void* first = ::mmap(reinterpret_cast<void*>(primary.first_va), 1 << 20, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    EXPECT_EQ(first, reinterpret_cast<void*>(primary.first_va));
    ::munmap(first, 1 << 20);
    ::munmap(squat, 4096);
}

TEST_F(SharedFixture, InfoForProcinfoAsTextAndJson) {
    primary = start_primary(dir, 2, 1 << 20);
    ASSERT_GT(primary.pid, 0);
    auto c = Client::connect(dir);
    ASSERT_TRUE(c);
    auto i = query_info(**c);
    ASSERT_TRUE(i) << i.error().message();
    EXPECT_EQ(i->pid, primary.pid);
    EXPECT_EQ(i->prefix, "shared");
    EXPECT_EQ(i->vfio_mode, "noiommu");
    EXPECT_EQ(i->iova_mode, "va");
    EXPECT_EQ(i->segments_total, 2u);
    ASSERT_EQ(i->segments.size(), 2u);
    EXPECT_EQ(i->segments[0].va, primary.first_va);
    EXPECT_TRUE(i->segments[0].iova_contiguous);
    EXPECT_EQ(i->segments[0].backing, "memfd");
    EXPECT_EQ(i->vfio, "{\"container\": \"none\"}");
    const std::string text = to_text(*i);
    EXPECT_TRUE(contains(text, "pid " + std::to_string(primary.pid))) << text;
    EXPECT_TRUE(contains(text, "vfio mode    noiommu (forced by the test)")) << text;
    const std::string json = to_json(*i);
    EXPECT_TRUE(contains(json, "\"description\": \"{\\\"container\\\": \\\"none\\\"}\"")) << json;
    EXPECT_TRUE(contains(json, "\"segment_count\": 2")) << json;
    // Valid JSON, if python3 is here to say so.
    if (::system("python3 -c '' 2>/dev/null") == 0) {
        FILE* f = ::popen("python3 -c 'import json,sys; json.load(sys.stdin)'", "w");
        ASSERT_NE(f, nullptr);
        std::fwrite(json.data(), 1, json.size(), f);
        EXPECT_EQ(::pclose(f), 0) << json;
    }
}

TEST(SharedLocal, AttachInThePrimarysOwnProcessFindsEverythingTaken) {
    auto m = Memory::create(small_memory(0x48000000ULL));
    ASSERT_TRUE(m) << m.error().message();
    auto s = (*m)->add(1 << 20);
    ASSERT_TRUE(s);
    MemoryOptions o = small_memory(0x48000000ULL);
    o.page_size = 4096;
    o.iova_mode = IovaMode::va;
    std::vector<Segment> segs{**s};
    std::vector<vfio::Fd> fds;
    fds.emplace_back(::fcntl((*s)->fd, F_DUPFD_CLOEXEC, 0));
    auto a = Memory::attach(o, segs, std::move(fds));
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().err(), EEXIST);
    EXPECT_TRUE(contains(a.error().message(), "is taken in this process")) << a.error().message();
    // Garbage from a primary is refused before anything is mapped.
    segs[0].va += 1;
    std::vector<vfio::Fd> one;
    one.emplace_back(::fcntl((*s)->fd, F_DUPFD_CLOEXEC, 0));
    auto g = Memory::attach(o, segs, std::move(one));
    ASSERT_FALSE(g);
    EXPECT_EQ(g.error().err(), EINVAL);
}

}  // namespace
}  // namespace vfiokit::eal::mp
