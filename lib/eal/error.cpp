#include "vfiokit/eal/error.hpp"

#include <cstring>

namespace vfiokit {

Error& Error::context(std::string_view what) {
    if (what.empty())
        return *this;
    if (context_.empty())
        context_ = what;
    else
        context_ = std::string(what) + ": " + context_;
    return *this;
}

Error& Error::hint(std::string_view advice) {
    if (hint_.empty())
        hint_ = advice;
    return *this;
}

std::string Error::message() const {
    std::string m;
    if (!context_.empty())
        m += context_ + ": ";
    m += op_;
    if (err_ != 0) {
        m += ": ";
        m += std::strerror(err_);
        m += " (errno " + std::to_string(err_) + ")";
    }
    if (!hint_.empty())
        m += "\n  hint: " + hint_;
    return m;
}

}  // namespace vfiokit
