// Metrics: a small Prometheus registry. Families of counters, gauges and fixed-bucket
// histograms with label names; `family.with({"web", "production"})` returns a handle
// whose updates are lock-free atomics (the lookup by label values takes the family's
// mutex, so keep handles for hot paths). Callback families compute their samples at
// scrape time (router stats read from the agent, store row counts). Registry::expose()
// renders everything in the Prometheus text exposition format 0.0.4.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry::metrics {

using LabelValues = std::vector<std::string>;

// Limits that keep a bad input (a flood of distinct label values) from growing the
// registry without bound. A handle asked for beyond them is detached: it accepts
// updates and drops them, and the family's dropped() count grows.
inline constexpr size_t kMaxLabelNames = 16;
inline constexpr size_t kMaxLabelValueBytes = 1024;
inline constexpr size_t kDefaultMaxSeries = 10'000;
inline constexpr size_t kMaxBuckets = 64;

// "[a-zA-Z_:][a-zA-Z0-9_:]*"
bool valid_metric_name(std::string_view name);
// "[a-zA-Z_][a-zA-Z0-9_]*", not starting with "__" (reserved by Prometheus).
bool valid_label_name(std::string_view name);
// Escapes \ " and newline for a label value; invalid UTF-8 bytes become U+FFFD.
std::string escape_label_value(std::string_view value);
// Escapes \ and newline for a HELP text.
std::string escape_help(std::string_view help);
// A sample value as Prometheus writes it: "3", "0.25", "+Inf", "-Inf", "NaN".
std::string format_value(double v);

// Buckets 0.005 … 10 seconds, the Prometheus client default, good for HTTP latency.
std::vector<double> default_latency_buckets();
// `count` buckets: start, start*factor, start*factor^2, …
std::vector<double> exponential_buckets(double start, double factor, size_t count);

namespace detail {
struct CounterCell {
  std::atomic<double> value{0};
};
struct HistogramCell {
  explicit HistogramCell(std::shared_ptr<const std::vector<double>> b)
      : bounds(std::move(b)), counts(bounds->size() + 1) {}
  std::shared_ptr<const std::vector<double>> bounds;  // shared with the family
  std::vector<std::atomic<uint64_t>> counts;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum{0};
};
}  // namespace detail

// A monotonically increasing value. Copyable and cheap (a shared pointer to an atomic
// cell, so it may outlive its family or registry); a default-made one is detached.
class Counter {
 public:
  Counter() = default;
  // Adds `v`; negative or NaN amounts are ignored (a counter never goes down).
  void inc(double v = 1);
  double value() const;
  bool attached() const { return cell_ != nullptr; }

 private:
  friend class CounterFamily;
  explicit Counter(std::shared_ptr<detail::CounterCell> c) : cell_(std::move(c)) {}
  std::shared_ptr<detail::CounterCell> cell_;
};

// A value that goes up and down.
class Gauge {
 public:
  Gauge() = default;
  void set(double v);
  void add(double v);
  void inc() { add(1); }
  void dec() { add(-1); }
  double value() const;
  bool attached() const { return cell_ != nullptr; }

 private:
  friend class GaugeFamily;
  explicit Gauge(std::shared_ptr<detail::CounterCell> c) : cell_(std::move(c)) {}
  std::shared_ptr<detail::CounterCell> cell_;
};

// Observations counted into the family's fixed buckets.
class Histogram {
 public:
  Histogram() = default;
  // NaN observations are ignored.
  void observe(double v);
  // Total observations and their sum.
  uint64_t count() const;
  double sum() const;
  bool attached() const { return cell_ != nullptr; }

 private:
  friend class HistogramFamily;
  explicit Histogram(std::shared_ptr<detail::HistogramCell> c) : cell_(std::move(c)) {}
  std::shared_ptr<detail::HistogramCell> cell_;
};

enum class MetricType { kCounter, kGauge, kHistogram };
std::string_view type_name(MetricType t);

// What every family shares: name, help, label names, and rendering.
class Family {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels)
      : name_(std::move(name)), help_(std::move(help)), type_(type), labels_(std::move(labels)) {}
  virtual ~Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return labels_; }
  // Handles refused by a limit or a wrong number of label values.
  uint64_t dropped() const { return dropped_.load(); }

  // Appends the family's HELP, TYPE and sample lines.
  virtual void render(std::string& out) const = 0;

 protected:
  // Why `values` cannot name a series of this family, or ok.
  bool acceptable(const LabelValues& values) const;
  // `{a="x",b="y"}` (with `extra` label appended, e.g. le), or "" without labels.
  std::string label_block(const LabelValues& values, std::string_view extra_name = {},
                          std::string_view extra_value = {}) const;
  void render_header(std::string& out) const;

  mutable std::atomic<uint64_t> dropped_{0};

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> labels_;
};

class CounterFamily final : public Family {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> labels,
                size_t max_series = kDefaultMaxSeries)
      : Family(std::move(name), std::move(help), MetricType::kCounter, std::move(labels)),
        max_series_(max_series) {}
  // The series with these label values (created at 0); detached when refused.
  Counter with(const LabelValues& values);
  // Forgets a series (an instance that is gone); its handles become detached in effect.
  void remove(const LabelValues& values);
  size_t series() const;
  void render(std::string& out) const override;

 private:
  mutable std::mutex mu_;
  std::map<LabelValues, std::shared_ptr<detail::CounterCell>> cells_;
  size_t max_series_;
};

class GaugeFamily final : public Family {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> labels,
              size_t max_series = kDefaultMaxSeries)
      : Family(std::move(name), std::move(help), MetricType::kGauge, std::move(labels)),
        max_series_(max_series) {}
  Gauge with(const LabelValues& values);
  void remove(const LabelValues& values);
  size_t series() const;
  void render(std::string& out) const override;

 private:
  mutable std::mutex mu_;
  std::map<LabelValues, std::shared_ptr<detail::CounterCell>> cells_;
  size_t max_series_;
};

class HistogramFamily final : public Family {
 public:
  // `bounds` must be finite and strictly increasing (Registry::histogram checks).
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> bounds, size_t max_series = kDefaultMaxSeries)
      : Family(std::move(name), std::move(help), MetricType::kHistogram, std::move(labels)),
        bounds_(std::make_shared<const std::vector<double>>(std::move(bounds))),
        max_series_(max_series) {}
  Histogram with(const LabelValues& values);
  void remove(const LabelValues& values);
  size_t series() const;
  const std::vector<double>& bounds() const { return *bounds_; }
  void render(std::string& out) const override;

 private:
  mutable std::mutex mu_;
  std::map<LabelValues, std::shared_ptr<detail::HistogramCell>> cells_;
  std::shared_ptr<const std::vector<double>> bounds_;
  size_t max_series_;
};

// One counter or gauge sample a callback reports.
struct Sample {
  LabelValues labels;
  double value = 0;
};

// One histogram a callback reports: upper bounds (finite, increasing), the count of
// observations <= each bound (cumulative, as Prometheus and the router keep them),
// the total count (the +Inf bucket) and the sum.
struct HistogramSample {
  LabelValues labels;
  std::vector<double> bounds;
  std::vector<uint64_t> cumulative;  // same size as bounds
  uint64_t count = 0;
  double sum = 0;
};

using SampleCallback = std::function<std::vector<Sample>()>;
using HistogramCallback = std::function<std::vector<HistogramSample>()>;

// A family whose samples a callback computes at every scrape. The callback runs on the
// scraping thread, outside the registry's lock; it must not call into the registry and
// should bound its own time (e.g. a short deadline on a call to an agent). Samples with
// the wrong number of label values, repeated label values, or (histograms) bounds and
// counts that are not increasing are left out, so the output stays valid.
class CallbackFamily final : public Family {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::vector<std::string> labels, SampleCallback samples,
                 HistogramCallback histograms)
      : Family(std::move(name), std::move(help), type, std::move(labels)),
        samples_(std::move(samples)),
        histograms_(std::move(histograms)) {}
  void render(std::string& out) const override;

 private:
  void render_histogram(std::string& out, const HistogramSample& h) const;
  SampleCallback samples_;
  HistogramCallback histograms_;
};

// Owns every family. Registering a name again with the same type, labels (and buckets)
// returns the family already there; with anything different it is an error.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Result<CounterFamily*> counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> labels = {},
                                 size_t max_series = kDefaultMaxSeries);
  Result<GaugeFamily*> gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> labels = {},
                             size_t max_series = kDefaultMaxSeries);
  // `bounds` empty: default_latency_buckets(). An error names a bound that is not
  // finite or not above the one before it, or a label named "le".
  Result<HistogramFamily*> histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> labels = {},
                                     std::vector<double> bounds = {},
                                     size_t max_series = kDefaultMaxSeries);
  // `type` kCounter or kGauge.
  Status callback(const std::string& name, const std::string& help, MetricType type,
                  std::vector<std::string> labels, SampleCallback fn);
  Status callback_histogram(const std::string& name, const std::string& help,
                            std::vector<std::string> labels, HistogramCallback fn);

  // Every family, sorted by name, in the text exposition format 0.0.4
  // (Content-Type: kContentType).
  std::string expose() const;
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  // Checks the names and that `name` is free (or holds an equal family, returned).
  Result<Family*> check(const std::string& name, MetricType type,
                        const std::vector<std::string>& labels, bool is_callback);
  Family* add(std::unique_ptr<Family> f);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_;
  std::map<std::string, std::string> reserved_;  // _bucket/_sum/_count → histogram name
};

}  // namespace ferry::metrics
