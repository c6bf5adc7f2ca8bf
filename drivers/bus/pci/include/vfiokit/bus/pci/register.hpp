/// \file
/// Typed device registers.
///
/// One C++ type per register, its fields given as high:low bit ranges in
/// datasheet order and checked at compile time. A register value is read
/// whole, changed field by field (bits of other fields, reserved ones
/// included, are preserved), and written whole:
///
/// \code
///   struct DmaCommand : Register<DmaCommand, std::uint32_t, 0x98> {
///       VFIOKIT_FIELD(0, 0, start)
///       VFIOKIT_FIELD(1, 1, to_ram)
///       VFIOKIT_FIELD(2, 2, irq_on_done)
///   };
///   DmaCommand::read(bar).set_start(1).set_to_ram(0).write(bar);
/// \endcode
///
/// `Io` is anything with `read<T>(offset)` and `write<T>(offset, value)`: a BAR
/// mapping (bar.hpp), or a fake in tests.
///
/// Thread-safety: register values are plain values; an access is as safe as
/// the Io's read/write (for a Bar: one MMIO load or store, see bar.hpp). A
/// read-modify-write is not atomic: one thread owns a register's writes.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace vfiokit::pci {

template <class Io, class T>
concept RegisterIo = requires(Io& io, std::size_t off, T v) {
    { io.template read<T>(off) } -> std::same_as<T>;
    io.template write<T>(off, v);
};

template <class Self, std::unsigned_integral T, std::size_t Offset>
/// A device register: a value of type T at BAR offset `Offset`, whose fields
/// `Self` declares with VFIOKIT_FIELD (see the file's description).
class Register {
public:
    using value_type = T;
    static constexpr std::size_t offset = Offset;
    static constexpr unsigned bits = sizeof(T) * 8;

    constexpr Register() = default;
    constexpr explicit Register(T raw) : raw_(raw) {}

    [[nodiscard]] constexpr T raw() const { return raw_; }
    constexpr Self& set_raw(T v) {
        raw_ = v;
        return self();
    }

    template <class Io>
        requires RegisterIo<Io, T>
    [[nodiscard]] static Self read(Io& io) {
        Self s;
        s.raw_ = io.template read<T>(Offset);
        return s;
    }
    template <class Io>
        requires RegisterIo<Io, T>
    const Self& write(Io& io) const {
        io.template write<T>(Offset, raw_);
        return static_cast<const Self&>(*this);
    }
    /// A register value built from nothing (all fields zero), for registers
    /// written without reading first.
    [[nodiscard]] static constexpr Self zero() { return Self{}; }
    /// A register value from a raw word (read some other way, or a constant).
    [[nodiscard]] static constexpr Self from_raw(T v) {
        Self s;
        s.raw_ = v;
        return s;
    }

protected:
    template <unsigned Hi, unsigned Lo>
    [[nodiscard]] constexpr T get() const {
        static_assert(Hi >= Lo && Hi < bits, "field outside the register");
        return static_cast<T>((raw_ >> Lo) & mask<Hi, Lo>());
    }
    template <unsigned Hi, unsigned Lo>
    constexpr Self& set(T v) {
        static_assert(Hi >= Lo && Hi < bits, "field outside the register");
        raw_ = static_cast<T>((raw_ & ~(mask<Hi, Lo>() << Lo)) | ((v & mask<Hi, Lo>()) << Lo));
        return self();
    }

private:
    template <unsigned Hi, unsigned Lo>
    static constexpr T mask() {
        return Hi - Lo + 1 == bits ? static_cast<T>(~T{0})
                                   : static_cast<T>((T{1} << (Hi - Lo + 1)) - 1);
    }
    constexpr Self& self() { return static_cast<Self&>(*this); }
    T raw_ = 0;
};

}  // namespace vfiokit::pci

/// A field accessor pair: name() reads bits hi:lo, set_name(v) writes them.
#define VFIOKIT_FIELD(hi, lo, name)                                         \
    [[nodiscard]] constexpr auto name() const { return this->template get<hi, lo>(); } \
    constexpr auto& set_##name(typename Register::value_type v) {          \
        return this->template set<hi, lo>(v);                              \
    }
