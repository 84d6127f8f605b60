// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/route_table.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <set>

#include "core/slo_paths.h"

namespace ferry::routing {

namespace asio = boost::asio;

BackendState::BackendState(RouteBackend s, tcp::endpoint ep, size_t workers)
    : spec(std::move(s)), endpoint(ep), pools(workers) {}

int Snapshot::find(std::string_view name) const {
  for (size_t i = 0; i < releases.size(); ++i)
    if (releases[i].name == name) return static_cast<int>(i);
  return -1;
}

void Picker::reset(const Snapshot& s) {
  credit_.assign(s.releases.size(), 0);
  next_.assign(s.releases.size(), 0);
}

int Picker::pick_release(const Snapshot& s, int exclude) {
  int64_t total = 0;
  int best = -1;
  for (int i : s.weighted) {
    if (i == exclude) continue;
    int64_t w = s.releases[i].weight;
    credit_[i] += w;
    total += w;
    if (best < 0 || credit_[i] > credit_[best]) best = i;
  }
  if (best >= 0) credit_[best] -= total;
  return best;
}

BackendState* Picker::pick_backend(const Snapshot& s, int index, const BackendState* exclude) {
  const auto& list = s.releases[index].backends;
  for (size_t tries = 0; tries < list.size(); ++tries) {
    BackendState* b = list[next_[index]++ % list.size()].get();
    if (b != exclude) return b;
  }
  return nullptr;
}

int Picker::pick_by_hash(const Snapshot& s, std::string_view key) {
  if (s.weighted.empty()) return -1;
  // FNV-1a: stable across threads, restarts and hosts, unlike std::hash.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  int64_t total = 0;
  for (int i : s.weighted) total += s.releases[i].weight;
  // The releases' ranges follow the table order, so a growing release keeps the keys it had.
  auto point = static_cast<int64_t>(h % 1'000'003ull) * total / 1'000'003;
  for (int i : s.weighted) {
    point -= s.releases[i].weight;
    if (point < 0) return i;
  }
  return s.weighted.back();
}

Policy make_policy(const RouterSpec& spec) {
  Policy p;
  for (const auto& r : spec.trusted_proxies)
    if (auto c = parse_cidr(r); c.ok()) p.trusted_proxies.push_back(*c);
  for (const auto& r : spec.pin_from)
    if (auto c = parse_cidr(r); c.ok()) p.pin_from.push_back(*c);
  p.pin_tokens = spec.pin_tokens;
  p.shield = spec.shield;
  if (spec.affinity == "cookie") {
    p.affinity = Policy::Affinity::kCookie;
  } else if (spec.affinity.rfind("header:", 0) == 0 && spec.affinity.size() > 7) {
    p.affinity = Policy::Affinity::kHeader;
    p.affinity_header = spec.affinity.substr(7);
  }
  p.request_body_timeout_ms = spec.request_body_timeout_ms > 0 ? spec.request_body_timeout_ms : 1;
  // The agent refuses a desired state with bad paths; a bad list here excludes nothing.
  if (check_slo_exclude_paths(spec.slo_exclude_paths).ok())
    p.slo_exclude_paths = spec.slo_exclude_paths;
  return p;
}

namespace {

// Numeric addresses parse in place; a name (e.g. "localhost") is resolved once here, so
// the io threads never wait on a lookup.
bool resolve(const RouteBackend& b, tcp::endpoint* out) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(b.host, ec);
  if (!ec) {
    *out = tcp::endpoint(addr, b.port);
    return true;
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(b.host, std::to_string(b.port), ec);
  if (ec || results.empty()) return false;
  // Instances usually listen on 127.0.0.1 or 0.0.0.0: an IPv4 address is preferred.
  *out = results.begin()->endpoint();
  for (const auto& r : results)
    if (r.endpoint().address().is_v4()) {
      *out = r.endpoint();
      break;
    }
  return true;
}

}  // namespace

std::shared_ptr<const Snapshot> Registry::build(RouteTable table, uint64_t version,
                                                std::vector<std::string>* skipped) {
  auto snap = std::make_shared<Snapshot>();
  snap->version = version;
  auto release_index = [&](const std::string& name) {
    int i = snap->find(name);
    if (i >= 0) return i;
    auto& counters = releases_[name];
    if (!counters) counters = std::make_shared<ReleaseCounters>(name);
    snap->releases.push_back(ReleaseRoute{name, 0, counters, {}});
    return static_cast<int>(snap->releases.size() - 1);
  };
  for (const auto& [name, weight] : table.weights)
    snap->releases[release_index(name)].weight = weight > 0 ? weight : 0;

  std::set<std::string> present;
  for (const auto& b : table.backends) {
    if (b.id.empty() || b.port == 0 || !present.insert(b.id).second) {
      if (skipped != nullptr) skipped->push_back(b.id);
      continue;
    }
    tcp::endpoint ep;
    if (!resolve(b, &ep)) {
      if (skipped != nullptr) skipped->push_back(b.id);
      present.erase(b.id);
      continue;
    }
    auto& state = backends_[b.id];
    if (!state || state->endpoint != ep || state->spec.release != b.release) {
      if (state) state->removed.store(true);
      state = std::make_shared<BackendState>(b, ep, workers_);
    }
    state->removed.store(false);
    snap->releases[release_index(b.release)].backends.push_back(state);
  }
  // Backends that left the table keep their entry while requests drain, so in_flight()
  // can still count them; idle ones are forgotten.
  for (auto it = backends_.begin(); it != backends_.end();) {
    if (present.count(it->first) == 0) {
      it->second->removed.store(true);
      if (it->second->in_flight.load() == 0) {
        it = backends_.erase(it);
        continue;
      }
    }
    ++it;
  }
  for (size_t i = 0; i < snap->releases.size(); ++i) {
    const auto& r = snap->releases[i];
    if (r.weight > 0 && !r.backends.empty()) snap->weighted.push_back(static_cast<int>(i));
  }
  snap->policy = std::make_shared<const Policy>(make_policy(table.policy));
  if (!table.stable.empty()) {
    snap->stable = snap->find(table.stable);
  } else {
    // No stable release named: the one with the most weight, when exactly one has it.
    int best = -1;
    bool tie = false;
    for (int i : snap->weighted) {
      if (best < 0 || snap->releases[i].weight > snap->releases[best].weight) {
        best = i;
        tie = false;
      } else if (snap->releases[i].weight == snap->releases[best].weight) {
        tie = true;
      }
    }
    snap->stable = tie ? -1 : best;
  }
  snap->table = std::move(table);
  return snap;
}

int Registry::in_flight(const std::string& backend_id) const {
  auto it = backends_.find(backend_id);
  return it == backends_.end() ? 0 : it->second->in_flight.load();
}

std::vector<ReleaseStats> Registry::stats() const {
  std::vector<ReleaseStats> out;
  out.reserve(releases_.size());
  for (const auto& [name, counters] : releases_) out.push_back(counters->snapshot());
  return out;
}

void Registry::seed(const std::vector<ReleaseStats>& stats) {
  for (const auto& from : stats) {
    if (from.release.empty()) continue;
    auto& counters = releases_[from.release];
    if (!counters) counters = std::make_shared<ReleaseCounters>(from.release);
    counters->seed(from);
  }
}

size_t Registry::retain(const std::set<std::string>& keep) {
  return std::erase_if(releases_, [&](const auto& kv) { return keep.count(kv.first) == 0; });
}

void Registry::clear_pools() {
  for (auto& [id, state] : backends_)
    for (auto& pool : state->pools) pool.conns.clear();
}

}  // namespace ferry::routing
