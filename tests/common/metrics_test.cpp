#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include "test_skip.h"

namespace ferry::metrics {
namespace {

// One parsed sample line of the text format.
struct Line {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

struct Parsed {
  std::map<std::string, std::string> help;  // name → unescaped help
  std::map<std::string, std::string> type;
  std::vector<Line> samples;
  std::string error;  // first line that did not parse

  const Line* find(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const auto& s : samples)
      if (s.name == name && s.labels == labels) return &s;
    return nullptr;
  }
};

// A strict reader of the 0.0.4 format, written from the format's description, so the
// tests check the output by reading it back rather than by comparing strings.
Parsed parse(const std::string& text) {
  Parsed p;
  if (!text.empty() && text.back() != '\n') p.error = "no final newline";
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!p.error.empty()) break;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool help = line[2] == 'H';
      const std::string rest = line.substr(7);
      const size_t sp = rest.find(' ');
      if (sp == std::string::npos) { p.error = line; break; }
      const std::string name = rest.substr(0, sp);
      std::string body = rest.substr(sp + 1), un;
      if (!valid_metric_name(name)) { p.error = line; break; }
      if (help) {
        for (size_t i = 0; i < body.size(); ++i) {
          if (body[i] == '\\' && i + 1 < body.size()) {
            un += body[i + 1] == 'n' ? '\n' : body[i + 1];
            ++i;
          } else {
            un += body[i];
          }
        }
        p.help[name] = un;
      } else {
        p.type[name] = body;
      }
      continue;
    }
    if (line.empty() || line[0] == '#') { p.error = "unexpected: " + line; break; }
    Line s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (!valid_metric_name(s.name)) { p.error = line; break; }
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string lname, lvalue;
        while (i < line.size() && line[i] != '=') lname += line[i++];
        if (!valid_label_name(lname) || i + 1 >= line.size() || line[i + 1] != '"') {
          p.error = line;
          break;
        }
        i += 2;
        bool closed = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') { closed = true; break; }
          if (c == '\\') {
            if (i >= line.size()) break;
            char e = line[i++];
            if (e == 'n') lvalue += '\n';
            else if (e == '\\' || e == '"') lvalue += e;
            else { p.error = "bad escape: " + line; break; }
          } else {
            lvalue += c;
          }
        }
        if (!closed || !p.error.empty()) { if (p.error.empty()) p.error = line; break; }
        s.labels[lname] = lvalue;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (!p.error.empty()) break;
      if (i >= line.size() || line[i] != '}') { p.error = line; break; }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') { p.error = line; break; }
    s.value = line.substr(i + 1);
    if (s.value.empty() || s.value.find(' ') != std::string::npos) { p.error = line; break; }
    p.samples.push_back(std::move(s));
  }
  return p;
}

double num(const Line* l) {
  if (!l) return -12345;
  if (l->value == "+Inf") return INFINITY;
  return std::stod(l->value);
}

TEST(Metrics, CounterAndGaugeExposeParseBack) {
  Registry reg;
  auto c = reg.counter("ferry_deployments_total", "Deployments finished.", {"app", "env", "result"});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto g = reg.gauge("ferry_instance_up", "1 when ready.", {"app", "instance"});
  ASSERT_TRUE(g.ok());
  Counter ok = (*c)->with({"web", "production", "succeeded"});
  ok.inc();
  ok.inc(2);
  ok.inc(-5);      // ignored: counters never go down
  ok.inc(NAN);     // ignored
  (*c)->with({"web", "staging", "failed"}).inc();
  Gauge up = (*g)->with({"web", "i-1"});
  up.set(1);
  up.dec();
  up.add(0.5);

  Parsed p = parse(reg.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.type["ferry_deployments_total"], "counter");
  EXPECT_EQ(p.type["ferry_instance_up"], "gauge");
  EXPECT_EQ(p.help["ferry_deployments_total"], "Deployments finished.");
  EXPECT_EQ(num(p.find("ferry_deployments_total",
                       {{"app", "web"}, {"env", "production"}, {"result", "succeeded"}})),
            3);
  EXPECT_EQ(num(p.find("ferry_deployments_total",
                       {{"app", "web"}, {"env", "staging"}, {"result", "failed"}})),
            1);
  EXPECT_EQ(num(p.find("ferry_instance_up", {{"app", "web"}, {"instance", "i-1"}})), 0.5);
  EXPECT_EQ(ok.value(), 3);
  EXPECT_EQ(p.samples.size(), 3u);
}

TEST(Metrics, ExactTextForASimpleFamily) {
  Registry reg;
  auto c = reg.counter("ferry_x_total", "Help with \\ and\nnewline.", {"a"});
  ASSERT_TRUE(c.ok());
  (*c)->with({"v"}).inc(2);
  auto u = reg.gauge("ferry_a", "Unlabelled.");
  ASSERT_TRUE(u.ok());
  (*u)->with({}).set(0.25);
  // Families come out sorted by name.
  EXPECT_EQ(reg.expose(),
            "# HELP ferry_a Unlabelled.\n"
            "# TYPE ferry_a gauge\n"
            "ferry_a 0.25\n"
            "# HELP ferry_x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE ferry_x_total counter\n"
            "ferry_x_total{a=\"v\"} 2\n");
}

TEST(Metrics, LabelValuesAreEscapedAndReadBack) {
  Registry reg;
  auto c = reg.counter("ferry_escape_total", "x", {"reason"});
  ASSERT_TRUE(c.ok());
  const std::string nasty = "a\\b \"quoted\"\nnext line } , =";
  (*c)->with({nasty}).inc();
  const std::string text = reg.expose();
  EXPECT_NE(text.find(R"(reason="a\\b \"quoted\"\nnext line } , =")"), std::string::npos) << text;
  Parsed p = parse(text);
  ASSERT_EQ(p.error, "");
  ASSERT_EQ(p.samples.size(), 1u);
  EXPECT_EQ(p.samples[0].labels.at("reason"), nasty);
}

TEST(Metrics, InvalidUtf8InLabelValuesIsReplaced) {
  EXPECT_EQ(escape_label_value("ok\xff" "x"), "ok\xEF\xBF\xBDx");
  EXPECT_EQ(escape_label_value("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(escape_label_value("caf\xC3\xA9"), "caf\xC3\xA9");             // valid é kept
  EXPECT_EQ(escape_label_value("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");   // truncated
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInf) {
  Registry reg;
  auto h = reg.histogram("ferry_request_duration_seconds", "Latency.", {"release"},
                         {0.1, 0.5, 1});
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  Histogram v3 = (*h)->with({"v3"});
  for (double x : {0.05, 0.1, 0.3, 0.5, 0.7, 2.0, 30.0}) v3.observe(x);
  v3.observe(NAN);  // ignored
  EXPECT_EQ(v3.count(), 7u);

  Parsed p = parse(reg.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.type["ferry_request_duration_seconds"], "histogram");
  auto bucket = [&](const std::string& le) {
    return num(p.find("ferry_request_duration_seconds_bucket", {{"release", "v3"}, {"le", le}}));
  };
  EXPECT_EQ(bucket("0.1"), 2);  // le is inclusive: 0.1 counts in le="0.1"
  EXPECT_EQ(bucket("0.5"), 4);
  EXPECT_EQ(bucket("1"), 5);
  EXPECT_EQ(bucket("+Inf"), 7);
  EXPECT_EQ(num(p.find("ferry_request_duration_seconds_count", {{"release", "v3"}})), 7);
  EXPECT_NEAR(num(p.find("ferry_request_duration_seconds_sum", {{"release", "v3"}})), 33.65,
              1e-9);
  // Every bucket line is no smaller than the one before it.
  double last = -1;
  for (const auto& s : p.samples)
    if (s.name == "ferry_request_duration_seconds_bucket") {
      EXPECT_GE(num(&s), last);
      last = num(&s);
    }
}

TEST(Metrics, HistogramDefaultAndExponentialBuckets) {
  Registry reg;
  auto h = reg.histogram("ferry_h_seconds", "x");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)->bounds(), default_latency_buckets());
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  (*h)->with({}).observe(0.007);
  Parsed p = parse(reg.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(num(p.find("ferry_h_seconds_bucket", {{"le", "0.005"}})), 0);
  EXPECT_EQ(num(p.find("ferry_h_seconds_bucket", {{"le", "0.01"}})), 1);
  EXPECT_EQ(num(p.find("ferry_h_seconds_bucket", {{"le", "10"}})), 1);
}

TEST(Metrics, NamesAreValidated) {
  EXPECT_TRUE(valid_metric_name("ferry_router:rate5m"));
  EXPECT_FALSE(valid_metric_name("9lives"));
  EXPECT_FALSE(valid_metric_name("has-dash"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_label_name("code_class"));
  EXPECT_FALSE(valid_label_name("__name__"));
  EXPECT_FALSE(valid_label_name("a:b"));
  EXPECT_FALSE(valid_label_name("1a"));

  Registry reg;
  auto bad = reg.counter("bad name", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'bad name'"), std::string::npos);
  auto bad_label = reg.counter("ok_total", "x", {"app", "bad-label"});
  ASSERT_FALSE(bad_label.ok());
  EXPECT_NE(bad_label.status().message().find("bad-label"), std::string::npos);
  EXPECT_FALSE(reg.counter("dup_total", "x", {"app", "app"}).ok());
  EXPECT_FALSE(reg.histogram("h_le", "x", {"le"}).ok());
  EXPECT_FALSE(reg.histogram("h_bad", "x", {}, {1, 1}).ok());
  EXPECT_FALSE(reg.histogram("h_inf", "x", {}, {1, INFINITY}).ok());
  std::vector<std::string> many;
  for (int i = 0; i < 17; ++i) many.push_back("l" + std::to_string(i));
  EXPECT_FALSE(reg.gauge("many", "x", many).ok());
}

TEST(Metrics, ReRegistrationReturnsTheSameFamilyOrRefuses) {
  Registry reg;
  auto a = reg.counter("ferry_c_total", "x", {"app"});
  auto b = reg.counter("ferry_c_total", "x", {"app"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(reg.gauge("ferry_c_total", "x", {"app"}).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(reg.counter("ferry_c_total", "x", {"env"}).status().code(), Code::kAlreadyExists);
  ASSERT_TRUE(reg.histogram("ferry_d_seconds", "x", {}, {1, 2}).ok());
  EXPECT_TRUE(reg.histogram("ferry_d_seconds", "x", {}, {1, 2}).ok());
  EXPECT_FALSE(reg.histogram("ferry_d_seconds", "x", {}, {1, 3}).ok());
  // A histogram's series names are taken.
  EXPECT_FALSE(reg.counter("ferry_d_seconds_count", "x").ok());
  ASSERT_TRUE(reg.gauge("ferry_e_sum", "x").ok());
  EXPECT_FALSE(reg.histogram("ferry_e", "x").ok());
  ASSERT_TRUE(reg.callback("ferry_cb", "x", MetricType::kGauge, {}, [] {
                   return std::vector<Sample>{};
                 }).ok());
  EXPECT_FALSE(reg.callback("ferry_cb", "x", MetricType::kGauge, {}, [] {
                    return std::vector<Sample>{};
                  }).ok());
  EXPECT_FALSE(reg.gauge("ferry_cb", "x").ok());
}

TEST(Metrics, WrongLabelCountGivesADetachedHandle) {
  Registry reg;
  auto c = reg.counter("ferry_d_total", "x", {"app", "env"});
  ASSERT_TRUE(c.ok());
  Counter h = (*c)->with({"web"});
  EXPECT_FALSE(h.attached());
  h.inc();  // does nothing, does not crash
  EXPECT_EQ(h.value(), 0);
  EXPECT_EQ((*c)->dropped(), 1u);
  EXPECT_FALSE((*c)->with({"web", std::string(kMaxLabelValueBytes + 1, 'x')}).attached());
  EXPECT_EQ((*c)->series(), 0u);
  Parsed p = parse(reg.expose());
  EXPECT_EQ(p.error, "");
  EXPECT_TRUE(p.samples.empty());
}

TEST(Metrics, SeriesLimitBoundsCardinality) {
  Registry reg;
  auto c = reg.counter("ferry_limited_total", "x", {"id"}, 3);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 10; ++i) (*c)->with({"id" + std::to_string(i)}).inc();
  EXPECT_EQ((*c)->series(), 3u);
  EXPECT_EQ((*c)->dropped(), 7u);
  // An existing series is still reachable at the limit.
  EXPECT_TRUE((*c)->with({"id0"}).attached());
  (*c)->remove({"id0"});
  EXPECT_EQ((*c)->series(), 2u);
  EXPECT_TRUE((*c)->with({"id9"}).attached());
}

TEST(Metrics, RemovedSeriesLeavesTheOutput) {
  Registry reg;
  auto g = reg.gauge("ferry_instance_up", "x", {"instance"});
  ASSERT_TRUE(g.ok());
  Gauge a = (*g)->with({"a"});
  a.set(1);
  (*g)->with({"b"}).set(1);
  (*g)->remove({"a"});
  a.set(5);  // the handle still works, but nothing shows it
  Parsed p = parse(reg.expose());
  EXPECT_EQ(p.find("ferry_instance_up", {{"instance", "a"}}), nullptr);
  EXPECT_NE(p.find("ferry_instance_up", {{"instance", "b"}}), nullptr);
}

TEST(Metrics, HandlesOutliveTheRegistry) {
  Histogram h;
  {
    Registry reg;
    h = (*reg.histogram("ferry_short_lived", "x", {}, {1}))->with({});
  }
  h.observe(0.5);  // the cell and its bounds are shared, not owned by the registry
  EXPECT_EQ(h.count(), 1u);
}

TEST(Metrics, CallbackFamiliesComputeAtScrapeAndSkipBadSamples) {
  Registry reg;
  int calls = 0;
  ASSERT_TRUE(reg.callback("ferry_router_requests_total", "Requests.", MetricType::kCounter,
                           {"app", "code_class"},
                           [&] {
                             ++calls;
                             return std::vector<Sample>{{{"web", "2xx"}, 10},
                                                        {{"web", "5xx"}, 2},
                                                        {{"web"}, 99},           // wrong arity
                                                        {{"web", "2xx"}, 77}};   // repeated
                           })
                  .ok());
  ASSERT_TRUE(reg.callback_histogram(
                     "ferry_router_request_duration_seconds", "Latency.", {"release"},
                     [] {
                       std::vector<HistogramSample> v(3);
                       v[0] = {{"v1"}, {0.1, 1}, {4, 9}, 10, 3.5};
                       v[1] = {{"v2"}, {1, 0.1}, {1, 2}, 2, 1};  // bounds not increasing
                       v[2] = {{"v3"}, {0.1, 1}, {5, 4}, 5, 1};  // counts not cumulative
                       return v;
                     })
                  .ok());
  EXPECT_EQ(calls, 0);
  Parsed p = parse(reg.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(p.type["ferry_router_requests_total"], "counter");
  EXPECT_EQ(num(p.find("ferry_router_requests_total", {{"app", "web"}, {"code_class", "2xx"}})),
            10);
  EXPECT_EQ(num(p.find("ferry_router_requests_total", {{"app", "web"}, {"code_class", "5xx"}})),
            2);
  EXPECT_EQ(num(p.find("ferry_router_request_duration_seconds_bucket",
                       {{"release", "v1"}, {"le", "0.1"}})),
            4);
  EXPECT_EQ(num(p.find("ferry_router_request_duration_seconds_bucket",
                       {{"release", "v1"}, {"le", "+Inf"}})),
            10);
  EXPECT_EQ(num(p.find("ferry_router_request_duration_seconds_count", {{"release", "v1"}})), 10);
  int v2v3 = 0;
  for (const auto& s : p.samples)
    if (s.labels.count("release") && s.labels.at("release") != "v1") ++v2v3;
  EXPECT_EQ(v2v3, 0);
  EXPECT_EQ(p.samples.size(), 2u + 3u + 2u);
  EXPECT_FALSE(reg.callback("ferry_h", "x", MetricType::kHistogram, {}, [] {
                    return std::vector<Sample>{};
                  }).ok());
}

TEST(Metrics, FormatValue) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(-1.5), "-1.5");
  EXPECT_EQ(format_value(INFINITY), "+Inf");
  EXPECT_EQ(format_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_value(NAN), "NaN");
  EXPECT_EQ(std::stod(format_value(0.1 + 0.2)), 0.1 + 0.2);  // round-trips exactly
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
  Registry reg;
  auto c = reg.counter("ferry_conc_total", "x", {"t"});
  auto h = reg.histogram("ferry_conc_seconds", "x", {}, {0.5});
  ASSERT_TRUE(c.ok() && h.ok());
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      Counter mine = (*c)->with({"shared"});
      Histogram hist = (*h)->with({});
      for (int i = 0; i < kEach; ++i) {
        mine.inc();
        hist.observe((i + t) % 2 ? 1.0 : 0.25);
        if (i % 5000 == 0) (void)reg.expose();  // scrapes race with updates
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ((*c)->with({"shared"}).value(), kThreads * kEach);
  EXPECT_EQ((*h)->with({}).count(), static_cast<uint64_t>(kThreads * kEach));
  EXPECT_DOUBLE_EQ((*h)->with({}).sum(), kThreads * kEach / 2 * 1.25);
}

// Prometheus's own checker reads the output, when it is installed (scripts/install-deps.sh --test).
TEST(Metrics, PromtoolAcceptsTheOutput) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0)
    FERRY_SKIP_OR_FAIL("promtool not installed (scripts/install-deps.sh --test installs it)");
  Registry reg;
  (*reg.counter("ferry_deployments_total", "Deployments finished.", {"app", "result"}))
      ->with({"web \"x\"\n", "succeeded"})
      .inc();
  (*reg.histogram("ferry_deployment_duration_seconds", "How long.", {"app"}, {1, 10}))
      ->with({"web"})
      .observe(3);
  (*reg.gauge("ferry_instance_up", "Up.", {"instance"}))->with({"a"}).set(1);
  const std::string path = ::testing::TempDir() + "ferry_metrics_promtool.txt";
  {
    std::ofstream f(path);
    f << reg.expose();
  }
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) out += buf;
  const int rc = pclose(pipe);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("error"), std::string::npos) << out;
}

}  // namespace
}  // namespace ferry::metrics
