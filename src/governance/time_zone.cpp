#include "governance/time_zone.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ferry {
namespace {

// A bounds-checked big-endian reader over the file bytes.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool has(size_t n) const { return n <= b_.size() - pos_; }
  size_t pos() const { return pos_; }
  void skip(size_t n) { pos_ += n; }
  uint8_t u8() { return static_cast<uint8_t>(b_[pos_++]); }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | u8();
    return v;
  }
  int64_t i64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | u8();
    return static_cast<int64_t>(v);
  }
  std::string_view bytes(size_t n) {
    auto v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
};

struct Header {
  int version = 1;
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

constexpr size_t kHeaderBytes = 44;
constexpr int32_t kMaxOffset = 26 * 3600;  // RFC 8536 bounds offsets to under 26 hours

Result<Header> read_header(Reader& r, const std::string& name) {
  if (!r.has(kHeaderBytes) || r.bytes(4) != "TZif")
    return invalid_argument(fmt::format("time zone \"{}\": not a TZif file", name));
  Header h;
  const uint8_t v = r.u8();
  if (v == 0) h.version = 1;
  else if (v >= '2' && v <= '4') h.version = v - '0';
  else return invalid_argument(fmt::format("time zone \"{}\": unknown TZif version {}", name, int{v}));
  r.skip(15);
  h.isutcnt = r.u32();
  h.isstdcnt = r.u32();
  h.leapcnt = r.u32();
  h.timecnt = r.u32();
  h.typecnt = r.u32();
  h.charcnt = r.u32();
  return h;
}

}  // namespace

Result<std::shared_ptr<const TimeZone>> TimeZone::from_tzif(std::string name, std::string_view bytes) {
  const auto bad = [&](std::string_view what) {
    return invalid_argument(fmt::format("time zone \"{}\": damaged TZif file: {}", name, what));
  };
  Reader r(bytes);
  auto h1 = read_header(r, name);
  if (!h1.ok()) return h1.status();
  Header h = *h1;
  size_t time_size = 4;
  // Version 2+ repeats the data with 64-bit times after the 32-bit block; read that.
  if (h.version >= 2) {
    const uint64_t v1_body = uint64_t{h.timecnt} * 5 + uint64_t{h.typecnt} * 6 + h.charcnt +
                             uint64_t{h.leapcnt} * 8 + h.isstdcnt + h.isutcnt;
    if (!r.has(v1_body)) return bad("truncated version 1 data");
    r.skip(v1_body);
    auto h2 = read_header(r, name);
    if (!h2.ok()) return h2.status();
    h = *h2;
    time_size = 8;
  }
  if (h.leapcnt != 0)
    return invalid_argument(fmt::format(
        "time zone \"{}\" counts leap seconds (a \"right/\" zone); use the zone without the "
        "right/ prefix", name));
  if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0) return bad("no local time types");
  if ((h.isutcnt != 0 && h.isutcnt != h.typecnt) || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt))
    return bad("indicator counts differ from the type count");
  const uint64_t body = uint64_t{h.timecnt} * (time_size + 1) + uint64_t{h.typecnt} * 6 +
                        h.charcnt + h.isstdcnt + h.isutcnt;
  if (!r.has(body)) return bad("truncated data block");

  std::shared_ptr<TimeZone> tz(new TimeZone());
  tz->name_ = name;
  tz->version_ = h.version;
  tz->at_.reserve(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    const int64_t t = time_size == 8 ? r.i64() : static_cast<int32_t>(r.u32());
    if (!tz->at_.empty() && t <= tz->at_.back()) return bad("transition times out of order");
    tz->at_.push_back(t);
  }
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    const uint8_t idx = r.u8();
    if (idx >= h.typecnt) return bad("transition refers to a missing type");
    tz->type_idx_.push_back(idx);
  }
  std::vector<uint8_t> desig(h.typecnt);
  for (uint32_t i = 0; i < h.typecnt; ++i) {
    LocalType t;
    t.utc_offset = static_cast<int32_t>(r.u32());
    const uint8_t dst = r.u8();
    desig[i] = r.u8();
    if (t.utc_offset <= -kMaxOffset || t.utc_offset >= kMaxOffset) return bad("UTC offset out of range");
    if (dst > 1 || desig[i] >= h.charcnt) return bad("bad local time type");
    t.is_dst = dst == 1;
    tz->types_.push_back(std::move(t));
  }
  const std::string_view chars = r.bytes(h.charcnt);
  for (uint32_t i = 0; i < h.typecnt; ++i) {
    const size_t end = chars.find('\0', desig[i]);
    if (end == std::string_view::npos) return bad("abbreviation not terminated");
    tz->types_[i].abbreviation = std::string(chars.substr(desig[i], end - desig[i]));
  }
  r.skip(h.isstdcnt + h.isutcnt);  // only needed by POSIX "posixrules" handling

  if (h.version >= 2) {
    if (!r.has(1) || r.u8() != '\n') return bad("missing footer");
    const std::string_view rest = bytes.substr(r.pos());
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) return bad("footer not terminated");
    if (nl > 0) {
      auto footer = PosixTz::parse(rest.substr(0, nl));
      if (!footer.ok()) return bad(footer.status().message());
      tz->footer_ = std::move(*footer);
    }
  }
  return std::shared_ptr<const TimeZone>(std::move(tz));
}

std::shared_ptr<const TimeZone> TimeZone::utc() {
  static const std::shared_ptr<const TimeZone> kUtc = [] {
    std::shared_ptr<TimeZone> tz(new TimeZone());
    tz->name_ = "UTC";
    tz->types_.push_back({0, false, "UTC"});
    return std::shared_ptr<const TimeZone>(std::move(tz));
  }();
  return kUtc;
}

LocalType TimeZone::type_at(int64_t t) const {
  // RFC 8536: type 0 before the first transition; the footer after the last one (or
  // always, when there are no transitions).
  if (at_.empty()) return footer_ ? footer_->at(t) : types_[0];
  if (t < at_.front()) return types_[0];
  if (footer_ && t >= at_.back()) return footer_->at(t);
  const size_t i = static_cast<size_t>(std::upper_bound(at_.begin(), at_.end(), t) - at_.begin()) - 1;
  return types_[type_idx_[i]];
}

LocalTime TimeZone::to_local(int64_t t) const {
  LocalType type = type_at(t);
  LocalTime out;
  const int64_t local = t + type.utc_offset;
  out.civil = civil_from_seconds(local);
  out.weekday = weekday_from_days(floor_div(local, 86400));
  out.utc_offset = type.utc_offset;
  out.is_dst = type.is_dst;
  out.abbreviation = std::move(type.abbreviation);
  return out;
}

std::vector<ZoneTransition> TimeZone::transitions(int64_t from, int64_t to) const {
  std::vector<ZoneTransition> out;
  if (to <= from) return out;
  LocalType prev = type_at(from);
  auto it = std::upper_bound(at_.begin(), at_.end(), from);
  for (; it != at_.end() && *it <= to; ++it) {
    const size_t i = static_cast<size_t>(it - at_.begin());
    const LocalType& next = (footer_ && i + 1 == at_.size()) ? footer_->at(*it) : types_[type_idx_[i]];
    if (next == prev) continue;
    out.push_back({*it, next});
    prev = next;
  }
  if (footer_) {
    const int64_t start = at_.empty() ? from : std::max(from, at_.back());
    footer_->transitions(start, to, out);
  }
  return out;
}

CivilResolution TimeZone::resolve(const CivilTime& c) const {
  const int64_t local = civil_to_seconds(c);
  // Every instant that can show `local` lies within the largest offset of it.
  const int64_t from = local - kMaxOffset - 3600, to = local + kMaxOffset + 3600;
  const LocalType first = type_at(from);
  const std::vector<ZoneTransition> trs = transitions(from, to);
  std::vector<int32_t> offsets{first.utc_offset};
  for (const auto& tr : trs) offsets.push_back(tr.after.utc_offset);
  std::vector<int64_t> hits;
  for (int32_t off : offsets) {
    const int64_t t = local - off;
    if (type_at(t).utc_offset == off) hits.push_back(t);
  }
  std::sort(hits.begin(), hits.end());
  hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
  CivilResolution res;
  if (!hits.empty()) {
    res.kind = hits.size() > 1 ? CivilResolution::Kind::kRepeated : CivilResolution::Kind::kUnique;
    res.earliest = hits.front();
    res.latest = hits.back();
    return res;
  }
  // A gap: find the forward jump that skips `local`; its instant is the answer.
  res.kind = CivilResolution::Kind::kSkipped;
  res.earliest = res.latest = local - type_at(local).utc_offset;
  int32_t before = first.utc_offset;
  for (const auto& tr : trs) {
    if (tr.at + before <= local && local < tr.at + tr.after.utc_offset) {
      res.earliest = res.latest = tr.at;
      break;
    }
    before = tr.after.utc_offset;
  }
  return res;
}

int64_t TimeZone::to_unix(const CivilTime& c, Choose choose) const {
  const CivilResolution r = resolve(c);
  return choose == Choose::kEarliest ? r.earliest : r.latest;
}

std::string format_local(const LocalTime& t, bool with_seconds) {
  return format_civil(t.civil, with_seconds) + " " + t.abbreviation;
}

Status validate_zone_name(std::string_view name) {
  const auto bad = [&](std::string_view why) {
    std::string shown(name.substr(0, 64));
    for (char& ch : shown)
      if (ch < 0x20 || ch > 0x7e) ch = '?';
    return invalid_argument(fmt::format("time zone name \"{}\" {}", shown, why));
  };
  if (name.empty()) return bad("is empty");
  if (name.size() > 128) return bad("is longer than 128 characters");
  if (name.find("..") != std::string_view::npos) return bad("may not contain '..'");
  if (name.front() == '/' || name.front() == '-') return bad("may not start with '/' or '-'");
  for (char ch : name) {
    const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                    ch == '/' || ch == '_' || ch == '+' || ch == '-';
    if (!ok) return bad("may only hold letters, digits and / _ + - (e.g. Europe/Berlin)");
  }
  if (name.back() == '/' || name.find("//") != std::string_view::npos) return bad("has an empty part");
  return Status::Ok();
}

ZoneDb::ZoneDb(std::string root) : root_(std::move(root)) {}

size_t ZoneDb::cached() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

namespace {

// Reads a regular file of at most `limit` bytes; the error names the zone, not errno
// alone, so a user sees which setting is wrong.
Result<std::string> read_zone_file(const std::string& path, std::string_view name, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return not_found(fmt::format("unknown time zone \"{}\" (no such zone in the tz database)", name));
    return unavailable(fmt::format("time zone \"{}\": cannot open {}: {}", name, path, std::strerror(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return not_found(fmt::format("unknown time zone \"{}\" (not a zone file: {})", name, path));
  if (static_cast<uint64_t>(st.st_size) > limit)
    return invalid_argument(fmt::format("time zone \"{}\": {} is larger than {} bytes", name, path, limit));
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return unavailable(fmt::format("time zone \"{}\": cannot read {}", name, path));
    got += static_cast<size_t>(n);
  }
  return data;
}

}  // namespace

Result<std::shared_ptr<const TimeZone>> ZoneDb::load(std::string_view name) {
  FERRY_RETURN_IF_ERROR(validate_zone_name(name));
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(name); it != cache_.end()) return it->second;
  }
  // Read outside the lock: two threads may load the same zone once each; the first
  // insert wins and both get equal zones.
  auto bytes = read_zone_file(root_ + "/" + std::string(name), name, kMaxFileBytes);
  std::shared_ptr<const TimeZone> tz;
  if (bytes.ok()) {
    auto parsed = TimeZone::from_tzif(std::string(name), *bytes);
    if (!parsed.ok()) return parsed.status();
    tz = std::move(*parsed);
  } else if (bytes.status().code() == Code::kNotFound && (name == "UTC" || name == "Etc/UTC")) {
    tz = TimeZone::utc();
  } else {
    return bytes.status();
  }
  std::lock_guard lock(mu_);
  if (cache_.size() >= kMaxCached) return tz;
  return cache_.emplace(std::string(name), std::move(tz)).first->second;
}

ZoneDb& system_zones() {
  // Read once: the same directory src/config checks zone names against.
  static ZoneDb db([] {
    const char* dir = std::getenv("TZDIR");
    return std::string(dir && *dir ? dir : "/usr/share/zoneinfo");
  }());
  return db;
}

}  // namespace ferry
