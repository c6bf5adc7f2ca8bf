// The em statistics registers [SDM 13, "Statistics Registers"; 82574
// 10.2, statistics]: clear-on-read counters at 0x4000..0x40ff, kept in software so
// that nothing is lost between reads.
//
// Each counter has its register offset and the name DPDK's e1000 family
// gives it in xstats (drivers/net/e1000's igb names for the same
// registers, where DPDK has one). The 64-bit octet counters are a low and
// a high register; reading the high one clears both [SDM 13, GORCH/GOTCH/TORH/TOTH], so the
// low one is read first.
//
// Thread-safety: Counters is a value; one thread (the control path) reads
// the registers and updates it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace vfiokit::em {

struct StatReg {
    std::string_view name;
    std::uint32_t offset;
    bool wide;  // low at offset, high at offset + 4
};

// The order is the xstats order; stat::k* index into it.
inline constexpr std::array kStatRegs = {
    StatReg{"rx_crc_errors", 0x4000, false},                        // CRCERRS
    StatReg{"rx_align_errors", 0x4004, false},                      // ALGNERRC
    StatReg{"rx_symbol_errors", 0x4008, false},                     // SYMERRS
    StatReg{"rx_phy_errors", 0x400c, false},                        // RXERRC
    StatReg{"rx_missed_packets", 0x4010, false},                    // MPC
    StatReg{"tx_single_collision_packets", 0x4014, false},          // SCC
    StatReg{"tx_excessive_collision_packets", 0x4018, false},       // ECOL
    StatReg{"tx_multiple_collision_packets", 0x401c, false},        // MCC
    StatReg{"tx_late_collisions", 0x4020, false},                   // LATECOL
    StatReg{"tx_total_collisions", 0x4028, false},                  // COLC
    StatReg{"tx_deferred_packets", 0x4030, false},                  // DC
    StatReg{"tx_no_carrier_sense_packets", 0x4034, false},          // TNCRS
    StatReg{"rx_sequence_errors", 0x4038, false},                   // SEC
    StatReg{"rx_carrier_ext_errors", 0x403c, false},                // CEXTERR
    StatReg{"rx_length_errors", 0x4040, false},                     // RLEC
    StatReg{"rx_xon_packets", 0x4048, false},                       // XONRXC
    StatReg{"tx_xon_packets", 0x404c, false},                       // XONTXC
    StatReg{"rx_xoff_packets", 0x4050, false},                      // XOFFRXC
    StatReg{"tx_xoff_packets", 0x4054, false},                      // XOFFTXC
    StatReg{"rx_flow_control_unsupported_packets", 0x4058, false},  // FCRUC
    StatReg{"rx_size_64_packets", 0x405c, false},                   // PRC64
    StatReg{"rx_size_65_to_127_packets", 0x4060, false},            // PRC127
    StatReg{"rx_size_128_to_255_packets", 0x4064, false},           // PRC255
    StatReg{"rx_size_256_to_511_packets", 0x4068, false},           // PRC511
    StatReg{"rx_size_512_to_1023_packets", 0x406c, false},          // PRC1023
    StatReg{"rx_size_1024_to_max_packets", 0x4070, false},          // PRC1522
    StatReg{"rx_good_packets_hw", 0x4074, false},                   // GPRC
    StatReg{"rx_broadcast_packets", 0x4078, false},                 // BPRC
    StatReg{"rx_multicast_packets", 0x407c, false},                 // MPRC
    StatReg{"tx_good_packets_hw", 0x4080, false},                   // GPTC
    StatReg{"rx_good_bytes_hw", 0x4088, true},                      // GORCL/H
    StatReg{"tx_good_bytes_hw", 0x4090, true},                      // GOTCL/H
    StatReg{"rx_no_buffer_count", 0x40a0, false},                   // RNBC
    StatReg{"rx_undersize_errors", 0x40a4, false},                  // RUC
    StatReg{"rx_fragment_errors", 0x40a8, false},                   // RFC
    StatReg{"rx_oversize_errors", 0x40ac, false},                   // ROC
    StatReg{"rx_jabber_errors", 0x40b0, false},                     // RJC
    StatReg{"rx_total_bytes", 0x40c0, true},                        // TORL/H
    StatReg{"tx_total_bytes", 0x40c8, true},                        // TOTL/H
    StatReg{"rx_total_packets", 0x40d0, false},                     // TPR
    StatReg{"tx_total_packets", 0x40d4, false},                     // TPT
    StatReg{"tx_size_64_packets", 0x40d8, false},                   // PTC64
    StatReg{"tx_size_65_to_127_packets", 0x40dc, false},            // PTC127
    StatReg{"tx_size_128_to_255_packets", 0x40e0, false},           // PTC255
    StatReg{"tx_size_256_to_511_packets", 0x40e4, false},           // PTC511
    StatReg{"tx_size_512_to_1023_packets", 0x40e8, false},          // PTC1023
    StatReg{"tx_size_1024_to_max_packets", 0x40ec, false},          // PTC1522
    StatReg{"tx_multicast_packets", 0x40f0, false},                 // MPTC
    StatReg{"tx_broadcast_packets", 0x40f4, false},                 // BPTC
};

namespace stat {
// Index of the register at `offset` in kStatRegs (compile time).
consteval std::size_t at(std::uint32_t offset) {
    for (std::size_t i = 0; i < kStatRegs.size(); ++i)
        if (kStatRegs[i].offset == offset)
            return i;
    throw "no such statistics register";
}
inline constexpr std::size_t kCrcerrs = at(0x4000);
inline constexpr std::size_t kAlgnerrc = at(0x4004);
inline constexpr std::size_t kRxerrc = at(0x400c);
inline constexpr std::size_t kMpc = at(0x4010);
inline constexpr std::size_t kEcol = at(0x4018);
inline constexpr std::size_t kLatecol = at(0x4020);
inline constexpr std::size_t kCexterr = at(0x403c);
inline constexpr std::size_t kRlec = at(0x4040);
inline constexpr std::size_t kGprc = at(0x4074);
inline constexpr std::size_t kGptc = at(0x4080);
inline constexpr std::size_t kGorc = at(0x4088);
inline constexpr std::size_t kGotc = at(0x4090);
inline constexpr std::size_t kRnbc = at(0x40a0);
}  // namespace stat

// The software totals of every register since the last reset.
struct Counters {
    std::array<std::uint64_t, kStatRegs.size()> v{};

    // Adds what the registers counted since the last read (which clears
    // them). `Io` as in register.hpp.
    template <class Io>
    void collect(Io& io) {
        for (std::size_t i = 0; i < kStatRegs.size(); ++i) {
            const StatReg& r = kStatRegs[i];
            std::uint64_t n = io.template read<std::uint32_t>(r.offset);
            if (r.wide)
                n |= std::uint64_t{io.template read<std::uint32_t>(r.offset + 4)} << 32;
            v[i] += n;
        }
    }
    [[nodiscard]] std::uint64_t operator[](std::size_t i) const { return v[i]; }
};

}  // namespace vfiokit::em
