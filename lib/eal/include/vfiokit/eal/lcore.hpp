/// \file
/// Logical cores (DPDK's lcores): the threads an application runs its
/// polling loops on, each pinned to the CPUs the EAL options name.
///
/// \verbatim
///   -l 0-3          lcores 0..3 on CPUs 0..3 (DPDK's -l CORELIST)
///   -c 0xf          the same as a mask (DPDK's -c COREMASK)
///   --lcores '0@1,(2-3)@(4-5)'   DPDK's --lcores: lcore ids mapped to CPU sets
///   --main-lcore 1  which listed lcore is the main one (default: the lowest)
/// \endverbatim
///
/// The main lcore is the thread that called Eal::init (it is pinned to its
/// CPU set there); every other listed lcore gets a worker thread at init,
/// pinned to its CPU set, that waits for work:
///
/// \code
///   eal->lcores().launch(2, [&] { return poll_loop(); });   // runs on lcore 2
///   int rc = *eal->lcores().wait(2);                        // its return value
/// \endcode
///
/// lcore_id() is the calling thread's lcore id, kLcoreIdAny on threads the
/// EAL did not make; per-lcore caches (mbuf pools) index by it.
///
/// Errors: a CPU the process may not run on (sched_getaffinity), an lcore
/// id at or above kMaxLcores, or listed twice, fails option parsing or
/// Eal::init naming the lcore and the CPU. launch() on the main lcore, an
/// unknown lcore or one still busy fails with EINVAL/EBUSY naming it.
///
/// Ownership: Lcores owns its worker threads; destroying it waits for
/// launched functions, joins the workers and, when done on the main
/// thread, gives that thread back its lcore id (kLcoreIdAny) and the CPUs
/// it had. One Lcores per thread at a time (EBUSY otherwise).
///
/// Thread-safety: launch/wait for one lcore from one thread (the main one,
/// as in DPDK); state() and lcore_id() anywhere. A function that throws
/// ends the process (std::terminate), as on any std::thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vfiokit/eal/error.hpp"

namespace vfiokit::eal {

inline constexpr unsigned kMaxLcores = 128;   ///< Lcore ids are below this.
inline constexpr unsigned kLcoreIdAny = ~0u;  ///< lcore_id() on a thread that is not an EAL lcore.

namespace detail {
// The calling thread's lcore id, set by Lcores. Constant-initialized (no
// TLS wrapper call) and initial-exec (vfiokit is linked into the
// executable, or libvfiokit.so.0 is loaded at start, never dlopen'ed):
// reading it is one load, as the per-lcore caches of the packet path need.
[[gnu::tls_model("initial-exec")]] extern constinit thread_local unsigned t_lcore_id;
}  // namespace detail

/// The calling thread's lcore id; kLcoreIdAny outside EAL threads.
[[nodiscard]] inline unsigned lcore_id() { return detail::t_lcore_id; }

/// One lcore of the options: its id and the CPUs its thread may run on.
struct LcoreCpus {
    unsigned id = 0;
    std::vector<unsigned> cpus;
    bool operator==(const LcoreCpus&) const = default;
};

/// Parsers for the three options; errors name the option and the bad part.
[[nodiscard]] Result<std::vector<LcoreCpus>> parse_corelist(std::string_view v);   ///< -l
[[nodiscard]] Result<std::vector<LcoreCpus>> parse_coremask(std::string_view v);   ///< -c
[[nodiscard]] Result<std::vector<LcoreCpus>> parse_lcores(std::string_view v);     ///< --lcores

/// A worker lcore's state: idle, running a launched function, or finished
/// (its value not yet collected by wait()).
enum class LcoreState { wait, running, finished };

/// The process's lcores: a pinned worker thread per lcore but the main one,
/// which is the thread that started them.
class Lcores {
public:
    /// Starts a pinned worker thread for each lcore but `main_lcore`, and pins
    /// the calling thread (which becomes the main lcore). Empty `lcores`:
    /// the main lcore alone, on the CPUs the process may use.
    [[nodiscard]] static Result<std::unique_ptr<Lcores>> start(std::vector<LcoreCpus> lcores,
                                                              unsigned main_lcore);
    /// Joins the workers (after waiting for running functions).
    ~Lcores();
    Lcores(const Lcores&) = delete;
    Lcores& operator=(const Lcores&) = delete;

    [[nodiscard]] unsigned main_lcore() const;
    /// Every lcore id, ascending; workers() without the main one.
    [[nodiscard]] std::vector<unsigned> all() const;
    [[nodiscard]] std::vector<unsigned> workers() const;
    [[nodiscard]] unsigned count() const;
    [[nodiscard]] const std::vector<unsigned>& cpus(unsigned lcore) const;
    [[nodiscard]] LcoreState state(unsigned lcore) const;

    /// Runs fn on worker `lcore`; EBUSY when it is running something.
    [[nodiscard]] Result<void> launch(unsigned lcore, std::function<int()> fn);
    /// Waits for worker `lcore` to finish and returns fn's value (the lcore
    /// is then free for the next launch); 0 at once when nothing was launched.
    [[nodiscard]] Result<int> wait(unsigned lcore);
    /// Waits for every worker.
    void wait_all();

private:
    Lcores() = default;
    struct Worker;
    [[nodiscard]] Worker* worker(unsigned lcore) const;
    [[nodiscard]] Result<Worker*> launchable(unsigned lcore, const char* what) const;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<LcoreCpus> layout_;  // ascending ids, the main one included
    unsigned main_ = 0;
    // The thread start() pinned, and its CPUs before: the destructor gives
    // them back when it runs on that thread (a test, or a second EAL).
    std::vector<unsigned> main_saved_cpus_;
    std::uint64_t main_thread_ = 0;  // pthread_self() of the main lcore
};

/// "0-3,6": CPU or lcore ids as the options write them, for messages.
[[nodiscard]] std::string format_id_list(const std::vector<unsigned>& ids);

}  // namespace vfiokit::eal
