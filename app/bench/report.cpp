#include "report.hpp"

#include <algorithm>
#include <cstdio>

namespace vfiokit::bench {

bool Samples::empty() const {
    return std::none_of(v_.begin(), v_.end(), [](const auto& v) { return v.has_value(); });
}

std::vector<double> Samples::values() const {
    std::vector<double> out;
    for (const auto& v : v_)
        if (v)
            out.push_back(*v);
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

namespace {

std::string fmt(double v, int decimals) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}

std::string cell(const Samples& s, const Row& r) {
    const auto v = s.values();
    if (v.empty())
        return "-";
    if (r.better == Better::none)
        return fmt(median(v), r.decimals);
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    if (*lo == *hi)
        return fmt(median(v), r.decimals);
    return fmt(median(v), r.decimals) + " [" + fmt(*lo, r.decimals) + ", " + fmt(*hi, r.decimals) +
           "]";
}

std::string ratio(const Samples& a, const Samples& b, const Row& r) {
    std::vector<double> q;
    for (std::size_t i = 0; i < a.rounds(); ++i)
        if (auto x = a.at(i), y = b.at(i); x && y && *y != 0)
            q.push_back(*x / *y);
    if (q.empty())
        return "-";
    const auto [lo, hi] = std::minmax_element(q.begin(), q.end());
    if (r.better == Better::none || *lo == *hi)
        return fmt(median(q), 2);
    return fmt(median(q), 2) + " [" + fmt(*lo, 2) + ", " + fmt(*hi, 2) + "]";
}

}  // namespace

void print_table(const std::vector<Row>& rows) {
    constexpr std::size_t kCols = 8;
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"metric", "unit", "better", "vfiokit", "raw", "DPDK", "vfiokit/raw",
                     "vfiokit/DPDK"});
    for (const auto& r : rows) {
        const char* better = r.better == Better::lower    ? "lower"
                             : r.better == Better::higher ? "higher"
                                                          : "";
        cells.push_back({r.metric, r.unit, better, cell(r.vfiokit, r), cell(r.raw, r),
                         cell(r.dpdk, r), ratio(r.vfiokit, r.raw, r), ratio(r.vfiokit, r.dpdk, r)});
    }
    std::size_t w[kCols] = {};
    for (const auto& c : cells)
        for (std::size_t i = 0; i < kCols; ++i)
            w[i] = std::max(w[i], c[i].size());
    std::size_t total = 0;
    for (std::size_t i = 0; i < kCols; ++i)
        total += w[i] + (i + 1 < kCols ? 2 : 0);
    for (std::size_t row = 0; row < cells.size(); ++row) {
        const auto& c = cells[row];
        std::string line;
        for (std::size_t i = 0; i < kCols; ++i) {
            // Text left-aligned, numbers right-aligned.
            const std::string pad(w[i] - c[i].size(), ' ');
            line += i < 3 ? c[i] + pad : pad + c[i];
            line += i + 1 < kCols ? "  " : "";
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        std::printf("%s\n", line.c_str());
        if (row == 0)
            std::printf("%s\n", std::string(total, '-').c_str());
    }
}

}  // namespace vfiokit::bench
