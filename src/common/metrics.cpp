#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace ferry::metrics {

// ---- names, escaping, numbers -------------------------------------------------------

static bool name_char(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_metric_name(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, true)) return false;
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.size() > 100 || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (!name_char(name[i], i == 0, false)) return false;
  return true;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one.
static size_t utf8_length(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((b & 0xE0) == 0xC0) { n = 2; cp = b & 0x1F; }
  else if ((b & 0xF0) == 0xE0) { n = 3; cp = b & 0x0F; }
  else if ((b & 0xF8) == 0xF0) { n = 4; cp = b & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid too.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
  return n;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else {
      const size_t n = utf8_length(value, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD: Prometheus rejects a scrape with invalid UTF-8
        ++i;
        continue;
      }
      out.append(value.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest form that reads back exactly
  return std::string(buf, r.ptr);
}

std::vector<double> default_latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> exponential_buckets(double start, double factor, size_t count) {
  std::vector<double> b;
  double v = start;
  for (size_t i = 0; i < count; ++i, v *= factor) b.push_back(v);
  return b;
}

std::string_view type_name(MetricType t) {
  switch (t) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

// ---- handles ------------------------------------------------------------------------

static void atomic_add(std::atomic<double>& a, double v) {
  a.fetch_add(v, std::memory_order_relaxed);
}

void Counter::inc(double v) {
  if (!cell_ || !(v >= 0)) return;  // also false for NaN
  atomic_add(cell_->value, v);
}
double Counter::value() const { return cell_ ? cell_->value.load() : 0; }

void Gauge::set(double v) {
  if (cell_) cell_->value.store(v, std::memory_order_relaxed);
}
void Gauge::add(double v) {
  if (cell_) atomic_add(cell_->value, v);
}
double Gauge::value() const { return cell_ ? cell_->value.load() : 0; }

void Histogram::observe(double v) {
  if (!cell_ || std::isnan(v)) return;
  // The first bound >= v is the bucket (le is inclusive); past the last one is +Inf.
  const auto& b = *cell_->bounds;
  const size_t i = std::lower_bound(b.begin(), b.end(), v) - b.begin();
  cell_->counts[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(cell_->sum, v);
}
uint64_t Histogram::count() const {
  if (!cell_) return 0;
  uint64_t n = 0;
  for (const auto& c : cell_->counts) n += c.load();
  return n;
}
double Histogram::sum() const { return cell_ ? cell_->sum.load() : 0; }

// ---- families -----------------------------------------------------------------------

bool Family::acceptable(const LabelValues& values) const {
  if (values.size() != labels_.size()) return false;
  for (const auto& v : values)
    if (v.size() > kMaxLabelValueBytes) return false;
  return true;
}

std::string Family::label_block(const LabelValues& values, std::string_view extra_name,
                                std::string_view extra_value) const {
  if (labels_.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels_.size() && i < values.size(); ++i) {
    if (i) out += ',';
    out += labels_[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!labels_.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
  return out;
}

void Family::render_header(std::string& out) const {
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " " + std::string(type_name(type_)) + "\n";
}

// Finds or creates the cell for `values`; null when refused.
template <typename Cell, typename Make>
static std::shared_ptr<Cell> find_or_add(std::mutex& mu,
                                         std::map<LabelValues, std::shared_ptr<Cell>>& cells,
                                         const LabelValues& values, size_t max_series,
                                         Make make) {
  std::lock_guard lock(mu);
  auto it = cells.find(values);
  if (it != cells.end()) return it->second;
  if (cells.size() >= max_series) return nullptr;
  auto cell = make();
  cells.emplace(values, cell);
  return cell;
}

Counter CounterFamily::with(const LabelValues& values) {
  if (!acceptable(values)) return (++dropped_, Counter());
  auto cell = find_or_add(mu_, cells_, values, max_series_,
                          [] { return std::make_shared<detail::CounterCell>(); });
  if (!cell) ++dropped_;
  return Counter(std::move(cell));
}
void CounterFamily::remove(const LabelValues& values) {
  std::lock_guard lock(mu_);
  cells_.erase(values);
}
size_t CounterFamily::series() const {
  std::lock_guard lock(mu_);
  return cells_.size();
}
void CounterFamily::render(std::string& out) const {
  render_header(out);
  std::lock_guard lock(mu_);
  for (const auto& [values, cell] : cells_)
    out += name() + label_block(values) + " " + format_value(cell->value.load()) + "\n";
}

Gauge GaugeFamily::with(const LabelValues& values) {
  if (!acceptable(values)) return (++dropped_, Gauge());
  auto cell = find_or_add(mu_, cells_, values, max_series_,
                          [] { return std::make_shared<detail::CounterCell>(); });
  if (!cell) ++dropped_;
  return Gauge(std::move(cell));
}
void GaugeFamily::remove(const LabelValues& values) {
  std::lock_guard lock(mu_);
  cells_.erase(values);
}
size_t GaugeFamily::series() const {
  std::lock_guard lock(mu_);
  return cells_.size();
}
void GaugeFamily::render(std::string& out) const {
  render_header(out);
  std::lock_guard lock(mu_);
  for (const auto& [values, cell] : cells_)
    out += name() + label_block(values) + " " + format_value(cell->value.load()) + "\n";
}

Histogram HistogramFamily::with(const LabelValues& values) {
  if (!acceptable(values)) return (++dropped_, Histogram());
  auto cell = find_or_add(mu_, cells_, values, max_series_,
                          [this] { return std::make_shared<detail::HistogramCell>(bounds_); });
  if (!cell) ++dropped_;
  return Histogram(std::move(cell));
}
void HistogramFamily::remove(const LabelValues& values) {
  std::lock_guard lock(mu_);
  cells_.erase(values);
}
size_t HistogramFamily::series() const {
  std::lock_guard lock(mu_);
  return cells_.size();
}

// Writes _bucket lines (cumulative, +Inf last), _sum and _count. `count` is the +Inf
// bucket so the lines agree even while observations land concurrently.
static void render_histogram_lines(std::string& out, const std::string& name,
                                   const std::function<std::string(std::string_view)>& block,
                                   const std::string& plain_block,
                                   const std::vector<double>& bounds,
                                   const std::vector<uint64_t>& cumulative, uint64_t count,
                                   double sum) {
  for (size_t i = 0; i < bounds.size(); ++i)
    out += name + "_bucket" + block(format_value(bounds[i])) + " " +
           std::to_string(cumulative[i]) + "\n";
  out += name + "_bucket" + block("+Inf") + " " + std::to_string(count) + "\n";
  out += name + "_sum" + plain_block + " " + format_value(sum) + "\n";
  out += name + "_count" + plain_block + " " + std::to_string(count) + "\n";
}

void HistogramFamily::render(std::string& out) const {
  render_header(out);
  std::lock_guard lock(mu_);
  for (const auto& [values, cell] : cells_) {
    const size_t n = bounds_->size();
    std::vector<uint64_t> cumulative(n);
    uint64_t running = 0;
    for (size_t i = 0; i < n; ++i) {
      running += cell->counts[i].load(std::memory_order_relaxed);
      cumulative[i] = running;
    }
    running += cell->counts[n].load(std::memory_order_relaxed);
    const LabelValues& v = values;
    render_histogram_lines(
        out, name(), [&](std::string_view le) { return label_block(v, "le", le); },
        label_block(v), *bounds_, cumulative, running, cell->sum.load());
  }
}

void CallbackFamily::render(std::string& out) const {
  render_header(out);
  std::set<LabelValues> seen;
  if (type() == MetricType::kHistogram) {
    if (!histograms_) return;
    for (const auto& h : histograms_()) {
      if (!acceptable(h.labels) || !seen.insert(h.labels).second) continue;
      render_histogram(out, h);
    }
    return;
  }
  if (!samples_) return;
  for (const auto& s : samples_()) {
    if (!acceptable(s.labels) || !seen.insert(s.labels).second) continue;
    out += name() + label_block(s.labels) + " " + format_value(s.value) + "\n";
  }
}

void CallbackFamily::render_histogram(std::string& out, const HistogramSample& h) const {
  // A histogram Prometheus would reject (or misread) is left out rather than written.
  if (h.bounds.size() != h.cumulative.size() || h.bounds.size() > kMaxBuckets) return;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    if (!std::isfinite(h.bounds[i])) return;
    if (i > 0 && (h.bounds[i] <= h.bounds[i - 1] || h.cumulative[i] < h.cumulative[i - 1]))
      return;
  }
  if (!h.cumulative.empty() && h.count < h.cumulative.back()) return;
  render_histogram_lines(
      out, name(), [&](std::string_view le) { return label_block(h.labels, "le", le); },
      label_block(h.labels), h.bounds, h.cumulative, h.count, h.sum);
}

// ---- registry -----------------------------------------------------------------------

static Status check_labels(const std::string& metric, const std::vector<std::string>& labels,
                           bool histogram) {
  if (labels.size() > kMaxLabelNames)
    return invalid_argument("metric " + metric + " has " + std::to_string(labels.size()) +
                            " label names; at most " + std::to_string(kMaxLabelNames));
  std::set<std::string> seen;
  for (const auto& l : labels) {
    if (!valid_label_name(l))
      return invalid_argument("metric " + metric + ": label name '" + l +
                              "' is not valid (letters, digits, _; not starting with a "
                              "digit or __)");
    if (histogram && l == "le")
      return invalid_argument("histogram " + metric + " cannot have a label named le");
    if (!seen.insert(l).second)
      return invalid_argument("metric " + metric + ": label name '" + l + "' appears twice");
  }
  return Status::Ok();
}

Result<Family*> Registry::check(const std::string& name, MetricType type,
                                const std::vector<std::string>& labels, bool is_callback) {
  if (!valid_metric_name(name))
    return Status(invalid_argument("metric name '" + name +
                                   "' is not valid ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
  FERRY_RETURN_IF_ERROR(check_labels(name, labels, type == MetricType::kHistogram));
  auto it = families_.find(name);
  if (it != families_.end()) {
    Family* f = it->second.get();
    const bool same = !is_callback && f->type() == type && f->label_names() == labels &&
                      dynamic_cast<CallbackFamily*>(f) == nullptr;
    if (!same)
      return Status(already_exists("metric " + name +
                                   " is already registered with another type or labels"));
    return f;
  }
  // A histogram's series names must not meet another family's name, either way.
  if (reserved_.count(name))
    return Status(already_exists("metric " + name + " collides with histogram " +
                                 reserved_[name] + "'s series"));
  if (type == MetricType::kHistogram)
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (families_.count(name + suffix))
        return Status(already_exists("histogram " + name + " collides with metric " + name +
                                     suffix));
  return static_cast<Family*>(nullptr);
}

Family* Registry::add(std::unique_ptr<Family> f) {
  Family* raw = f.get();
  if (f->type() == MetricType::kHistogram)
    for (const char* suffix : {"_bucket", "_sum", "_count"}) reserved_[f->name() + suffix] = f->name();
  families_.emplace(f->name(), std::move(f));
  return raw;
}

Result<CounterFamily*> Registry::counter(const std::string& name, const std::string& help,
                                         std::vector<std::string> labels, size_t max_series) {
  std::lock_guard lock(mu_);
  auto found = check(name, MetricType::kCounter, labels, false);
  if (!found.ok()) return found.status();
  if (*found) return static_cast<CounterFamily*>(*found);
  return static_cast<CounterFamily*>(
      add(std::make_unique<CounterFamily>(name, help, std::move(labels), max_series)));
}

Result<GaugeFamily*> Registry::gauge(const std::string& name, const std::string& help,
                                     std::vector<std::string> labels, size_t max_series) {
  std::lock_guard lock(mu_);
  auto found = check(name, MetricType::kGauge, labels, false);
  if (!found.ok()) return found.status();
  if (*found) return static_cast<GaugeFamily*>(*found);
  return static_cast<GaugeFamily*>(
      add(std::make_unique<GaugeFamily>(name, help, std::move(labels), max_series)));
}

static Status check_bounds(const std::string& name, const std::vector<double>& bounds) {
  if (bounds.size() > kMaxBuckets)
    return invalid_argument("histogram " + name + " has " + std::to_string(bounds.size()) +
                            " buckets; at most " + std::to_string(kMaxBuckets));
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]))
      return invalid_argument("histogram " + name + ": bucket " + std::to_string(i) +
                              " is not finite (+Inf is always added)");
    if (i > 0 && bounds[i] <= bounds[i - 1])
      return invalid_argument("histogram " + name + ": bucket " + format_value(bounds[i]) +
                              " is not above the one before it (" +
                              format_value(bounds[i - 1]) + ")");
  }
  return Status::Ok();
}

Result<HistogramFamily*> Registry::histogram(const std::string& name, const std::string& help,
                                             std::vector<std::string> labels,
                                             std::vector<double> bounds, size_t max_series) {
  if (bounds.empty()) bounds = default_latency_buckets();
  FERRY_RETURN_IF_ERROR(check_bounds(name, bounds));
  std::lock_guard lock(mu_);
  auto found = check(name, MetricType::kHistogram, labels, false);
  if (!found.ok()) return found.status();
  if (*found) {
    auto* h = static_cast<HistogramFamily*>(*found);
    if (h->bounds() != bounds)
      return Status(already_exists("histogram " + name +
                                   " is already registered with other buckets"));
    return h;
  }
  return static_cast<HistogramFamily*>(add(std::make_unique<HistogramFamily>(
      name, help, std::move(labels), std::move(bounds), max_series)));
}

Status Registry::callback(const std::string& name, const std::string& help, MetricType type,
                          std::vector<std::string> labels, SampleCallback fn) {
  if (type == MetricType::kHistogram)
    return invalid_argument("metric " + name + ": use callback_histogram for histograms");
  if (!fn) return invalid_argument("metric " + name + ": the callback is empty");
  std::lock_guard lock(mu_);
  auto found = check(name, type, labels, true);
  if (!found.ok()) return found.status();
  add(std::make_unique<CallbackFamily>(name, help, type, std::move(labels), std::move(fn),
                                       nullptr));
  return Status::Ok();
}

Status Registry::callback_histogram(const std::string& name, const std::string& help,
                                    std::vector<std::string> labels, HistogramCallback fn) {
  if (!fn) return invalid_argument("metric " + name + ": the callback is empty");
  std::lock_guard lock(mu_);
  auto found = check(name, MetricType::kHistogram, labels, true);
  if (!found.ok()) return found.status();
  add(std::make_unique<CallbackFamily>(name, help, MetricType::kHistogram, std::move(labels),
                                       nullptr, std::move(fn)));
  return Status::Ok();
}

std::string Registry::expose() const {
  // Families are never removed, so the pointers outlive the lock; rendering (and the
  // callbacks) then run without holding it.
  std::vector<const Family*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, f] : families_) families.push_back(f.get());
  }
  std::string out;
  for (const Family* f : families) f->render(out);
  return out;
}

}  // namespace ferry::metrics
