// Byte encodings: see codec.hpp.
#include "libmail/base/codec.hpp"

namespace mail {

namespace {
const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

constexpr char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

} // namespace

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        unsigned v = (u8(bytes)[i] << 16) | (u8(bytes)[i + 1] << 8) | u8(bytes)[i + 2];
        for (int s = 18; s >= 0; s -= 6) out += b64chars[(v >> s) & 63];
    }
    std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        unsigned v = u8(bytes)[i] << 16;
        if (rest == 2) v |= u8(bytes)[i + 1] << 8;
        out += b64chars[(v >> 18) & 63];
        out += b64chars[(v >> 12) & 63];
        out += rest == 2 ? b64chars[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; ++j) {
            char c = text[i + j];
            if (c == '=' && i + 4 == text.size() && j >= 2) {
                v[j] = 0;
                ++pad;
            } else if (pad > 0 || (v[j] = base64_value(c)) < 0) {
                return std::nullopt;
            }
        }
        unsigned w = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
        out += static_cast<char>((w >> 16) & 0xff);
        if (pad < 2) out += static_cast<char>((w >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(w & 0xff);
        // Canonical form only: the bits padding drops must be zero.
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) return std::nullopt;
    }
    return out;
}

std::string base64_decode_lenient(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=') break;
        int v = base64_value(c);
        if (v < 0) continue;
        acc = ((acc << 6) | static_cast<unsigned>(v)) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string qp_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '=') {
            out += text[i];
            continue;
        }
        std::size_t j = i + 1;
        while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
        if (j < text.size() && text[j] == '\n') {  // a soft line break
            i = j;
            continue;
        }
        if (j + 1 < text.size() && text[j] == '\r' && text[j + 1] == '\n') {
            i = j + 1;
            continue;
        }
        if (i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
            continue;
        }
        out += '=';
    }
    return out;
}

std::string hex_encode(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> hex_decode(std::string_view text) {
    if (text.size() % 2) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += 2) {
        if (text[i] >= 'A' && text[i] <= 'F') return std::nullopt;
        if (text[i + 1] >= 'A' && text[i + 1] <= 'F') return std::nullopt;
        int a = hex_value(text[i]), b = hex_value(text[i + 1]);
        if (a < 0 || b < 0) return std::nullopt;
        out += static_cast<char>(a * 16 + b);
    }
    return out;
}

} // namespace mail
