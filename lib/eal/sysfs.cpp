#include "vfiokit/eal/sysfs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <system_error>

namespace vfiokit::sysfs {

namespace fs = std::filesystem;

std::string Root::path(std::string_view sys_path) const {
    return prefix_ + std::string(sys_path);
}

Result<std::string> Root::read(std::string_view sys_path) const {
    const int fd = ::open(path(sys_path).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(errno, "read " + std::string(sys_path));
    std::string s;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            return fail(err, "read " + std::string(sys_path));
        }
        if (n == 0)
            break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

Result<unsigned long> Root::read_uint(std::string_view sys_path) const {
    auto s = read(sys_path);
    if (!s)
        return fail(s.error());
    std::string_view v = *s;
    int base = 10;
    if (v.starts_with("0x") || v.starts_with("0X")) {
        v.remove_prefix(2);
        base = 16;
    }
    unsigned long out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out, base);
    if (ec != std::errc() || end != v.data() + v.size() || v.empty())
        return fail(EINVAL, "parse \"" + *s + "\" in " + std::string(sys_path));
    return out;
}

Result<long> Root::read_int(std::string_view sys_path) const {
    auto s = read(sys_path);
    if (!s)
        return fail(s.error());
    long out = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), out, 10);
    if (ec != std::errc() || end != s->data() + s->size() || s->empty())
        return fail(EINVAL, "parse \"" + *s + "\" in " + std::string(sys_path));
    return out;
}

std::optional<std::string> Root::link_name(std::string_view sys_path) const {
    std::error_code ec;
    fs::path target = fs::read_symlink(path(sys_path), ec);
    if (ec)
        return std::nullopt;
    return target.filename().string();
}

std::optional<unsigned> Root::link_number(std::string_view sys_path) const {
    auto name = link_name(sys_path);
    if (!name)
        return std::nullopt;
    unsigned out = 0;
    auto [end, ec] = std::from_chars(name->data(), name->data() + name->size(), out, 10);
    if (ec != std::errc() || end != name->data() + name->size() || name->empty())
        return std::nullopt;
    return out;
}

Result<void> Root::write(std::string_view sys_path, std::string_view value) const {
    const int fd = ::open(path(sys_path).c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(errno, "open " + std::string(sys_path) + " for writing");
    const ssize_t n = ::write(fd, value.data(), value.size());
    const int err = errno;
    ::close(fd);
    if (n < 0)
        return fail(err, "write \"" + std::string(value) + "\" to " + std::string(sys_path));
    if (static_cast<std::size_t>(n) != value.size())
        return fail(EIO, "short write to " + std::string(sys_path));
    return {};
}

bool Root::exists(std::string_view sys_path) const {
    std::error_code ec;
    return fs::exists(fs::symlink_status(path(sys_path), ec)) && !ec;
}

std::vector<std::string> Root::list(std::string_view sys_path) const {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(path(sys_path), ec), end; !ec && it != end; it.increment(ec))
        names.push_back(it->path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace vfiokit::sysfs
