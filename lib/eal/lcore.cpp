#include "vfiokit/eal/lcore.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace vfiokit::eal {

namespace detail {
constinit thread_local unsigned t_lcore_id = kLcoreIdAny;
}  // namespace detail

namespace {

// CPU ids the kernel's cpu_set_t can name (glibc: 1024).
constexpr unsigned kMaxCpus = CPU_SETSIZE;

Error bad(std::string_view opt, std::string what) {
    return std::move(Error(EINVAL, "option " + std::string(opt) + ": " + std::move(what))
                         .hint("see --help for the EAL options"));
}

// A small recursive-descent reader over one option value.
class Reader {
public:
    Reader(std::string_view opt, std::string_view v) : opt_(opt), v_(v) {}
    [[nodiscard]] bool done() const { return pos_ >= v_.size(); }
    [[nodiscard]] char peek() const { return done() ? '\0' : v_[pos_]; }
    bool take(char c) {
        if (peek() != c)
            return false;
        ++pos_;
        return true;
    }
    [[nodiscard]] Error error(const std::string& what) const {
        return bad(opt_, "'" + std::string(v_) + "': " + what + " at position " +
                             std::to_string(pos_ + 1));
    }
    Result<unsigned> number(const char* what) {
        unsigned n = 0;
        const char* b = v_.data() + pos_;
        auto [p, ec] = std::from_chars(b, v_.data() + v_.size(), n, 10);
        if (ec == std::errc::result_out_of_range)
            return fail(error(std::string(what) + " too large"));
        if (ec != std::errc() || p == b)
            return fail(error(std::string("expected ") + what));
        pos_ += static_cast<std::size_t>(p - b);
        return n;
    }
    // N or N-M into `out`.
    Result<void> range(const char* what, std::vector<unsigned>& out) {
        auto lo = number(what);
        if (!lo)
            return fail(std::move(lo.error()));
        unsigned hi = *lo;
        if (take('-')) {
            auto h = number(what);
            if (!h)
                return fail(std::move(h.error()));
            if (*h < *lo)
                return fail(error("range " + std::to_string(*lo) + "-" + std::to_string(*h) +
                                  " runs backwards"));
            hi = *h;
        }
        // Bounded before the loop: ids are checked against their limits by
        // the caller, but a range of 4 billion must not be expanded first.
        if (hi >= kMaxCpus)
            return fail(error(std::string(what) + " " + std::to_string(hi) + " is above " +
                              std::to_string(kMaxCpus - 1)));
        for (unsigned i = *lo; i <= hi; ++i)
            out.push_back(i);
        return {};
    }
    // "(a,b-c,...)": a group; or a single N (or N-M when `allow_range`).
    Result<std::vector<unsigned>> set(const char* what, bool allow_range) {
        std::vector<unsigned> out;
        if (take('(')) {
            do {
                if (auto ok = range(what, out); !ok)
                    return fail(std::move(ok.error()));
            } while (take(','));
            if (!take(')'))
                return fail(error("expected ',' or ')'"));
            return out;
        }
        if (allow_range) {
            if (auto ok = range(what, out); !ok)
                return fail(std::move(ok.error()));
            return out;
        }
        auto n = number(what);
        if (!n)
            return fail(std::move(n.error()));
        if (*n >= kMaxCpus)
            return fail(error(std::string(what) + " " + std::to_string(*n) + " is above " +
                              std::to_string(kMaxCpus - 1)));
        out.push_back(*n);
        return out;
    }

private:
    std::string_view opt_;
    std::string_view v_;
    std::size_t pos_ = 0;
};

// Ids below kMaxLcores, none twice; sorts by id. `opt` names the option,
// or is empty for a layout given to Lcores::start.
Result<std::vector<LcoreCpus>> checked(std::string_view opt, std::vector<LcoreCpus> ls) {
    const auto err = [opt](std::string what) {
        return opt.empty() ? Error(EINVAL, "lcores: " + what) : bad(opt, std::move(what));
    };
    if (ls.empty())
        return fail(err("no lcore given"));
    // Stable: a duplicate is reported with its CPUs in the order given.
    std::stable_sort(ls.begin(), ls.end(),
                     [](const auto& a, const auto& b) { return a.id < b.id; });
    for (std::size_t i = 0; i < ls.size(); ++i) {
        if (ls[i].id >= kMaxLcores)
            return fail(err("lcore " + std::to_string(ls[i].id) + " (CPU " +
                                     format_id_list(ls[i].cpus) + "): lcore ids must be below " +
                                     std::to_string(kMaxLcores)));
        if (i > 0 && ls[i].id == ls[i - 1].id)
            return fail(err("lcore " + std::to_string(ls[i].id) + " is given twice (CPU " +
                                     format_id_list(ls[i - 1].cpus) + " and CPU " +
                                     format_id_list(ls[i].cpus) + ")"));
        std::sort(ls[i].cpus.begin(), ls[i].cpus.end());
        ls[i].cpus.erase(std::unique(ls[i].cpus.begin(), ls[i].cpus.end()), ls[i].cpus.end());
    }
    return ls;
}

Result<std::vector<unsigned>> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof(set), &set) != 0)
        return fail(Error(errno, "sched_getaffinity"));
    std::vector<unsigned> out;
    for (unsigned c = 0; c < kMaxCpus; ++c)
        if (CPU_ISSET(c, &set))
            out.push_back(c);
    return out;
}

Result<std::vector<unsigned>> thread_cpus(pthread_t t) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (int rc = ::pthread_getaffinity_np(t, sizeof(set), &set); rc != 0)
        return fail(Error(rc, "pthread_getaffinity_np"));
    std::vector<unsigned> out;
    for (unsigned c = 0; c < kMaxCpus; ++c)
        if (CPU_ISSET(c, &set))
            out.push_back(c);
    return out;
}

Result<void> pin(pthread_t t, const std::vector<unsigned>& cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned c : cpus)
        CPU_SET(c, &set);
    if (int rc = ::pthread_setaffinity_np(t, sizeof(set), &set); rc != 0)
        return fail(Error(rc, "pthread_setaffinity_np(CPU " + format_id_list(cpus) + ")"));
    return {};
}

}  // namespace

std::string format_id_list(const std::vector<unsigned>& ids) {
    std::string out;
    for (std::size_t i = 0; i < ids.size();) {
        std::size_t j = i;
        while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1)
            ++j;
        out += (out.empty() ? "" : ",") + std::to_string(ids[i]);
        if (j > i)
            out += "-" + std::to_string(ids[j]);
        i = j + 1;
    }
    return out;
}

// -l 0-3,5: lcore N on CPU N.
Result<std::vector<LcoreCpus>> parse_corelist(std::string_view v) {
    Reader r("-l", v);
    std::vector<unsigned> ids;
    do {
        if (auto ok = r.range("CPU", ids); !ok)
            return fail(std::move(ok.error()));
    } while (r.take(','));
    if (!r.done())
        return fail(r.error("expected ',' or '-'"));
    std::vector<LcoreCpus> out;
    for (unsigned id : ids)
        out.push_back({id, {id}});
    return checked("-l", std::move(out));
}

// -c 0xf: bit N set means lcore N on CPU N. As long as the hex digits go
// (more than 64 bits is fine; DPDK takes masks up to its lcore limit).
Result<std::vector<LcoreCpus>> parse_coremask(std::string_view v) {
    std::string_view hex = v;
    if (hex.starts_with("0x") || hex.starts_with("0X"))
        hex.remove_prefix(2);
    if (hex.empty())
        return fail(bad("-c", "'" + std::string(v) + "' is not a hex mask"));
    std::vector<LcoreCpus> out;
    unsigned bit = 0;
    for (std::size_t i = hex.size(); i-- > 0; bit += 4) {
        const char c = hex[i];
        unsigned d = 0;
        if (c >= '0' && c <= '9')
            d = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = static_cast<unsigned>(c - 'A' + 10);
        else
            return fail(bad("-c", "'" + std::string(v) + "' is not a hex mask ('" +
                                      std::string(1, c) + "')"));
        for (unsigned b = 0; b < 4; ++b)
            if (d & (1u << b)) {
                const unsigned id = bit + b;
                if (id >= kMaxLcores)
                    return fail(bad("-c", "'" + std::string(v) + "' sets bit " +
                                              std::to_string(id) + ": lcore " +
                                              std::to_string(id) + " (CPU " + std::to_string(id) +
                                              ") is not below " + std::to_string(kMaxLcores)));
                out.push_back({id, {id}});
            }
    }
    if (out.empty())
        return fail(bad("-c", "'" + std::string(v) + "' sets no bit: no lcore"));
    return checked("-c", std::move(out));
}

// --lcores: ELEM[,ELEM...], ELEM = LCORES[@CPUS], LCORES = N | N-M | (GROUP),
// CPUS = N | (GROUP), GROUP = N[-M][,N[-M]...]. Without @, each lcore runs
// on the CPU of its own id; with it, every lcore of the set on the whole
// CPU set.
Result<std::vector<LcoreCpus>> parse_lcores(std::string_view v) {
    Reader r("--lcores", v);
    std::vector<LcoreCpus> out;
    do {
        auto ids = r.set("lcore id", true);
        if (!ids)
            return fail(std::move(ids.error()));
        if (r.take('@')) {
            auto cpus = r.set("CPU", false);
            if (!cpus)
                return fail(std::move(cpus.error()));
            for (unsigned id : *ids)
                out.push_back({id, *cpus});
        } else {
            for (unsigned id : *ids)
                out.push_back({id, {id}});
        }
    } while (r.take(','));
    if (!r.done())
        return fail(r.error("expected ',' or '@'"));
    return checked("--lcores", std::move(out));
}

// ---- Lcores -----------------------------------------------------------------

struct Lcores::Worker {
    unsigned id = 0;
    std::mutex mu;
    std::condition_variable cv;
    LcoreState state = LcoreState::wait;
    std::function<int()> fn;
    int ret = 0;
    bool quit = false;
    std::thread thread;

    void loop() {
        detail::t_lcore_id = id;
        std::unique_lock lock(mu);
        for (;;) {
            cv.wait(lock, [&] { return quit || state == LcoreState::running; });
            if (state != LcoreState::running)
                return;  // quit, nothing to run
            auto f = std::move(fn);
            lock.unlock();
            const int r = f();
            lock.lock();
            ret = r;
            state = LcoreState::finished;
            cv.notify_all();
        }
    }
};

Result<std::unique_ptr<Lcores>> Lcores::start(std::vector<LcoreCpus> lcores, unsigned main_lcore) {
    auto allowed = allowed_cpus();
    if (!allowed)
        return fail(std::move(allowed.error()).context("lcores"));
    if (lcores.empty())
        lcores.push_back({main_lcore, *allowed});
    auto ls = checked("", std::move(lcores));
    if (!ls)
        return fail(std::move(ls.error()));
    bool has_main = false;
    for (const auto& l : *ls) {
        has_main |= l.id == main_lcore;
        if (l.cpus.empty())
            return fail(Error(EINVAL, "lcore " + std::to_string(l.id) + ": no CPU given"));
        for (unsigned c : l.cpus)
            if (!std::binary_search(allowed->begin(), allowed->end(), c))
                return fail(Error(EINVAL, "lcore " + std::to_string(l.id) + ": CPU " +
                                              std::to_string(c) +
                                              " is not one this process may run on")
                                .hint("this process may use CPU " + format_id_list(*allowed) +
                                      " (sched_getaffinity: taskset or a cgroup cpuset limit "
                                      "it); choose lcores' CPUs among them"));
    }
    std::vector<unsigned> ids;
    for (const auto& l : *ls)
        ids.push_back(l.id);
    if (!has_main)
        return fail(Error(EINVAL, "main lcore " + std::to_string(main_lcore) +
                                      " is not among the lcores (" + format_id_list(ids) + ")")
                        .hint("give --main-lcore one of the lcores -l, -c or --lcores list"));
    if (detail::t_lcore_id != kLcoreIdAny)
        return fail(Error(EBUSY, "lcores: this thread is already lcore " +
                                     std::to_string(detail::t_lcore_id))
                        .hint("destroy the first EAL (its Lcores) before starting another"));

    std::unique_ptr<Lcores> l(new Lcores());
    l->layout_ = std::move(*ls);
    l->main_ = main_lcore;
    const pthread_t self = ::pthread_self();
    auto saved = thread_cpus(self);
    if (!saved)
        return fail(std::move(saved.error()).context("lcores: main lcore"));
    for (const auto& lc : l->layout_) {
        if (lc.id == main_lcore) {
            if (auto ok = pin(self, lc.cpus); !ok)
                return fail(std::move(ok.error()).context("main lcore " + std::to_string(lc.id)));
            continue;
        }
        auto w = std::make_unique<Worker>();
        w->id = lc.id;
        Worker* raw = w.get();
        w->thread = std::thread([raw] { raw->loop(); });
        // Pinned from here so a failure is reported now; until then the
        // thread only waits on its condition variable.
        const pthread_t th = w->thread.native_handle();
        l->workers_.push_back(std::move(w));  // joined by ~Lcores on failure
        if (auto ok = pin(th, lc.cpus); !ok) {
            (void)pin(self, *saved);
            return fail(std::move(ok.error()).context("lcore " + std::to_string(lc.id)));
        }
        const std::string name = "lcore-" + std::to_string(lc.id);
        (void)::pthread_setname_np(th, name.c_str());  // a name is only for ps/gdb
    }
    l->main_saved_cpus_ = std::move(*saved);
    l->main_thread_ = static_cast<std::uint64_t>(self);
    detail::t_lcore_id = main_lcore;
    return l;
}

Lcores::~Lcores() {
    wait_all();
    for (auto& w : workers_) {
        {
            std::lock_guard g(w->mu);
            w->quit = true;
        }
        w->cv.notify_all();
        if (w->thread.joinable())
            w->thread.join();
    }
    // Only the main thread's own TLS and affinity can be given back here.
    if (main_thread_ != 0 && static_cast<std::uint64_t>(::pthread_self()) == main_thread_) {
        detail::t_lcore_id = kLcoreIdAny;
        (void)pin(::pthread_self(), main_saved_cpus_);
    }
}

unsigned Lcores::main_lcore() const { return main_; }

std::vector<unsigned> Lcores::all() const {
    std::vector<unsigned> out;
    for (const auto& l : layout_)
        out.push_back(l.id);
    return out;
}

std::vector<unsigned> Lcores::workers() const {
    std::vector<unsigned> out;
    for (const auto& l : layout_)
        if (l.id != main_)
            out.push_back(l.id);
    return out;
}

unsigned Lcores::count() const { return static_cast<unsigned>(layout_.size()); }

const std::vector<unsigned>& Lcores::cpus(unsigned lcore) const {
    static const std::vector<unsigned> none;
    for (const auto& l : layout_)
        if (l.id == lcore)
            return l.cpus;
    return none;
}

Lcores::Worker* Lcores::worker(unsigned lcore) const {
    for (const auto& w : workers_)
        if (w->id == lcore)
            return w.get();
    return nullptr;
}

LcoreState Lcores::state(unsigned lcore) const {
    Worker* w = worker(lcore);
    if (w == nullptr)
        return LcoreState::wait;  // the main lcore, or none: nothing launched there
    std::lock_guard g(w->mu);
    return w->state;
}

Result<Lcores::Worker*> Lcores::launchable(unsigned lcore, const char* what) const {
    if (lcore == main_)
        return fail(Error(EINVAL, std::string(what) + " lcore " + std::to_string(lcore) +
                                      ": it is the main lcore (this thread)")
                        .hint("call the function directly on the main lcore"));
    Worker* w = worker(lcore);
    if (w == nullptr)
        return fail(Error(EINVAL, std::string(what) + " lcore " + std::to_string(lcore) +
                                      ": not an lcore of this EAL (lcores " +
                                      format_id_list(all()) + ")"));
    return w;
}

Result<void> Lcores::launch(unsigned lcore, std::function<int()> fn) {
    auto w = launchable(lcore, "launch on");
    if (!w)
        return fail(std::move(w.error()));
    if (!fn)
        return fail(Error(EINVAL, "launch on lcore " + std::to_string(lcore) + ": no function"));
    {
        std::lock_guard g((*w)->mu);
        if ((*w)->state != LcoreState::wait)
            return fail(Error(EBUSY, "launch on lcore " + std::to_string(lcore) + ": it is " +
                                         ((*w)->state == LcoreState::running
                                              ? "running a function"
                                              : "finished but not waited for"))
                            .hint("wait(" + std::to_string(lcore) + ") first"));
        (*w)->fn = std::move(fn);
        (*w)->state = LcoreState::running;
    }
    (*w)->cv.notify_all();
    return {};
}

Result<int> Lcores::wait(unsigned lcore) {
    auto w = launchable(lcore, "wait for");
    if (!w)
        return fail(std::move(w.error()));
    std::unique_lock lock((*w)->mu);
    if ((*w)->state == LcoreState::wait)
        return 0;
    (*w)->cv.wait(lock, [&] { return (*w)->state == LcoreState::finished; });
    (*w)->state = LcoreState::wait;
    return (*w)->ret;
}

void Lcores::wait_all() {
    for (const auto& w : workers_)
        (void)wait(w->id);
}

}  // namespace vfiokit::eal
