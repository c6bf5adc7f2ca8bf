// The benchmark's samples and its report table: per metric the vfiokit, raw
// and DPDK values (median of the rounds with their [min, max]) and the
// ratios vfiokit/raw and vfiokit/DPDK.
//
// Ratios are paired: one ratio per round, from the two runs of that round
// (which ran seconds apart), then the median of those, with their range. On a
// machine whose load drifts, pairing cancels what the two runs shared.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vfiokit::bench {

enum class Better { lower, higher, none };

// One metric's values for one column, one slot per round; a slot may be
// empty (that side was not run, or failed, in that round).
class Samples {
public:
    void add(double v) { v_.push_back(v); }
    void add_missing() { v_.push_back(std::nullopt); }
    [[nodiscard]] bool empty() const;
    [[nodiscard]] std::vector<double> values() const;  // the present ones
    [[nodiscard]] std::optional<double> at(std::size_t round) const {
        return round < v_.size() ? v_[round] : std::nullopt;
    }
    [[nodiscard]] std::size_t rounds() const { return v_.size(); }

private:
    std::vector<std::optional<double>> v_;
};

[[nodiscard]] double median(std::vector<double> v);

struct Row {
    std::string metric;
    std::string unit;
    Better better = Better::lower;
    int decimals = 1;
    Samples vfiokit, raw, dpdk;
};

// Prints the table: "median [min, max]" of the rounds per column (the median
// alone when all rounds agree); counts (Better::none) print the median only. Ratio
// cells: "median [min, max]" of the per-round ratios.
void print_table(const std::vector<Row>& rows);

}  // namespace vfiokit::bench
