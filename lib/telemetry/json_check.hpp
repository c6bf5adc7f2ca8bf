// A strict JSON syntax check for tests: every reply the server sends must
// be one JSON value that a client's parser accepts (RFC 8259 grammar;
// strings ASCII, as the encoder writes them).
#pragma once

#include <cctype>
#include <string_view>

namespace vfiokit::telemetry::testing {

class JsonCheck {
public:
    explicit JsonCheck(std::string_view s) : s_(s) {}
    // True when the whole text is one value (whitespace around it allowed).
    bool valid() {
        ws();
        if (!value())
            return false;
        ws();
        return i_ == s_.size();
    }

private:
    bool value(int depth = 0) {
        if (depth > 64 || i_ >= s_.size())
            return false;
        switch (s_[i_]) {
        case '{': return object(depth);
        case '[': return array(depth);
        case '"': return string();
        case 't': return word("true");
        case 'f': return word("false");
        case 'n': return word("null");
        default: return number();
        }
    }
    bool object(int depth) {
        ++i_;
        ws();
        if (peek('}'))
            return ++i_, true;
        for (;;) {
            ws();
            if (!string())
                return false;
            ws();
            if (!peek(':'))
                return false;
            ++i_;
            ws();
            if (!value(depth + 1))
                return false;
            ws();
            if (peek('}'))
                return ++i_, true;
            if (!peek(','))
                return false;
            ++i_;
        }
    }
    bool array(int depth) {
        ++i_;
        ws();
        if (peek(']'))
            return ++i_, true;
        for (;;) {
            ws();
            if (!value(depth + 1))
                return false;
            ws();
            if (peek(']'))
                return ++i_, true;
            if (!peek(','))
                return false;
            ++i_;
        }
    }
    bool string() {
        if (!peek('"'))
            return false;
        for (++i_; i_ < s_.size(); ++i_) {
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"')
                return ++i_, true;
            if (c < 0x20 || c > 0x7e)
                return false;
            if (c == '\\') {
                if (++i_ >= s_.size())
                    return false;
                const char e = s_[i_];
                if (e == 'u') {
                    for (int k = 0; k < 4; ++k)
                        if (++i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_])))
                            return false;
                } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                    return false;
                }
            }
        }
        return false;
    }
    bool number() {
        const std::size_t start = i_;
        if (peek('-'))
            ++i_;
        if (peek('0')) {
            ++i_;
        } else {
            if (!digit())
                return false;
            while (digit())
                ++i_;
        }
        return i_ > start;
    }
    bool digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }
    bool word(std::string_view w) {
        if (s_.substr(i_, w.size()) != w)
            return false;
        i_ += w.size();
        return true;
    }
    bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
            ++i_;
    }
    std::string_view s_;
    std::size_t i_ = 0;
};

inline bool valid_json(std::string_view s) { return JsonCheck(s).valid(); }

}  // namespace vfiokit::telemetry::testing
