/// \file
/// Errors as values.
///
/// Every fallible vfiokit call returns `Result<T>`: either the value or an Error
/// that says what was attempted (the syscall or ioctl), the errno the kernel
/// gave, the object it concerned (device address, group, IOVA range, ...) and,
/// where we know it, what the user should do about it. Errors are created where
/// the failure is observed (usually the syscall seam) and gain context as they
/// travel up; library code never exits or aborts on a runtime error.
/// Thread-safety: Error and Result are values; distinct objects may be used
/// on distinct threads.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace vfiokit {

/// A failure: errno, what was attempted, what it concerned, and a hint; see
/// the file's description.
class [[nodiscard]] Error {
public:
    /// `err` is an errno value, or 0 when the failure did not come from the
    /// kernel (bad input, policy). `op` names what was attempted.
    Error(int err, std::string op) : err_(err), op_(std::move(op)) {}

    [[nodiscard]] int err() const { return err_; }
    [[nodiscard]] const std::string& op() const { return op_; }
    [[nodiscard]] const std::string& context() const { return context_; }
    [[nodiscard]] const std::string& hint() const { return hint_; }

    /// Adds what the failing operation concerned ("device 0000:00:03.0").
    /// Outer context is prepended, so the message reads from the caller's
    /// view inwards.
    Error& context(std::string_view what);
    /// Sets the advice printed after the message ("bind it to vfio-pci: ...").
    /// A hint set deeper in the stack wins over one added later, since the
    /// innermost code knows the cause best.
    Error& hint(std::string_view advice);

    /// `"<context>: <op>: <strerror> (errno N)\n  hint: <hint>"`
    [[nodiscard]] std::string message() const;

private:
    int err_;
    std::string op_;
    std::string context_;
    std::string hint_;
};

/// Either a T or the Error that kept the call from producing one.
template <class T>
using Result = std::expected<T, Error>;

///@{
/// Convenience for returning an Error from a function returning `Result<T>`.
inline std::unexpected<Error> fail(int err, std::string op) {
    return std::unexpected(Error(err, std::move(op)));
}
inline std::unexpected<Error> fail(Error e) {
///@}
    return std::unexpected(std::move(e));
}

}  // namespace vfiokit
