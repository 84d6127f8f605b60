// Builds small TZif files in memory so tests can reach the reader's paths that the
// installed tz database does not (version 1 only, footer only, damaged data).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ferry::testing {

struct TzifType {
  int32_t utc_offset;
  bool is_dst;
  std::string abbreviation;
};

struct TzifSpec {
  int version = 2;                    // 1, 2, 3
  std::vector<int64_t> transitions;
  std::vector<uint8_t> indices;       // one per transition
  std::vector<TzifType> types;
  std::string footer;                 // version 2+: the POSIX TZ string ("" for none)
  uint32_t leap_count = 0;            // leap records to add (zeros)
};

inline void put32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s & 0xff));
}
inline void put64(std::string& out, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s & 0xff));
}

inline std::string tzif_block(const TzifSpec& spec, bool wide, std::string& chars) {
  std::string out = "TZif";
  out.push_back(spec.version == 1 ? '\0' : static_cast<char>('0' + spec.version));
  out.append(15, '\0');
  chars.clear();
  std::vector<uint8_t> desig;
  for (const auto& t : spec.types) {
    desig.push_back(static_cast<uint8_t>(chars.size()));
    chars += t.abbreviation;
    chars.push_back('\0');
  }
  put32(out, 0);                                 // isutcnt
  put32(out, 0);                                 // isstdcnt
  put32(out, spec.leap_count);
  put32(out, static_cast<uint32_t>(spec.transitions.size()));
  put32(out, static_cast<uint32_t>(spec.types.size()));
  put32(out, static_cast<uint32_t>(chars.size()));
  for (int64_t t : spec.transitions) {
    if (wide) put64(out, static_cast<uint64_t>(t));
    else put32(out, static_cast<uint32_t>(static_cast<int32_t>(t)));
  }
  for (uint8_t i : spec.indices) out.push_back(static_cast<char>(i));
  for (size_t i = 0; i < spec.types.size(); ++i) {
    put32(out, static_cast<uint32_t>(spec.types[i].utc_offset));
    out.push_back(spec.types[i].is_dst ? 1 : 0);
    out.push_back(static_cast<char>(desig[i]));
  }
  out += chars;
  for (uint32_t i = 0; i < spec.leap_count; ++i) {
    if (wide) put64(out, 0);
    else put32(out, 0);
    put32(out, 0);
  }
  return out;
}

inline std::string make_tzif(const TzifSpec& spec) {
  std::string chars;
  std::string out = tzif_block(spec, false, chars);
  if (spec.version >= 2) {
    out += tzif_block(spec, true, chars);
    out += "\n" + spec.footer + "\n";
  }
  return out;
}

}  // namespace ferry::testing
