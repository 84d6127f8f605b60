#include "agent/acme_manager.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "acme/certs.h"
#include "acme/client.h"
#include "acme/ec_key.h"
#include "common/crypto.h"
#include "common/json.h"

namespace ferry {

namespace fs = std::filesystem;

struct AcmeManager::Entry {
  AcmeSpec spec;
  std::shared_ptr<AcmeChallengeBook> book;
  std::string folder;  // DIR/certs/APP
  std::string bundle;  // folder/bundle.pem
  int64_t due_ms = 0;  // next order (unix ms); 0: none
  bool running = false;
  bool forgotten = false;
  // What fill_status reports.
  std::string state = "pending";
  int64_t not_after_ms = 0;
  int64_t renew_at_ms = 0;
  int64_t next_attempt_ms = 0;
  uint64_t issued = 0;
  uint64_t failures = 0;
  int consecutive_failures = 0;
  std::string error;
};

namespace {

bool acme_app_name_ok(const std::string& app) {
  return !app.empty() && app.size() <= 200 && app.front() != '.' &&
         std::all_of(app.begin(), app.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
         });
}

// Writes `data` to `path` through a 0600 temporary file and a rename (readers see the old
// file or the new one, never a part).
Status write_private_file(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("acme: cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return internal_error("acme: cannot write " + tmp + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  bool ok = ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return internal_error("acme: cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string out;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > (1 << 20)) return {};
  }
  return out;
}

Status make_private_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return internal_error("acme: cannot make " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

std::set<std::string> as_set(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// When a certificate valid over [nb, na] is renewed: at 2/3 of its lifetime, moved by up to
// lifetime/90 either way so that the certificates of many apps and hosts are not all
// renewed at once.
int64_t renewal_time(int64_t nb, int64_t na) {
  const int64_t life = std::max<int64_t>(na - nb, 1);
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const int64_t spread = life / 90;
  std::uniform_int_distribution<int64_t> jitter(-spread, spread);
  return nb + life * 2 / 3 + (spread > 0 ? jitter(rng) : 0);
}

}  // namespace

AcmeManager::AcmeManager(AcmeManagerOptions options)
    : opts_(std::move(options)), clock_(opts_.clock ? *opts_.clock : system_clock_) {}

AcmeManager::~AcmeManager() {
  stop();
}

int64_t AcmeManager::now_ms() const {
  return to_unix_ms(clock_.now());
}

std::string AcmeManager::account_key_path(const std::string& directory) const {
  return opts_.dir + "/account-" + sha256_hex(directory).substr(0, 16) + ".pem";
}

Status AcmeManager::start() {
  FERRY_RETURN_IF_ERROR(make_private_dir(opts_.dir));
  FERRY_RETURN_IF_ERROR(make_private_dir(opts_.dir + "/certs"));
  if (started_) return Status::Ok();
  started_ = true;
  thread_ = std::thread([this] { run(); });
  return Status::Ok();
}

void AcmeManager::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AcmeManager::poke() {
  cv_.notify_all();
}

Result<std::string> AcmeManager::ensure(const std::string& app, const AcmeSpec& spec,
                                        std::shared_ptr<AcmeChallengeBook> book) {
  if (!acme_app_name_ok(app))
    return invalid_argument("acme: app name \"" + app.substr(0, 100) + "\" cannot name a folder");
  if (spec.hosts.empty()) return invalid_argument("acme: no host name for app " + app);
  const std::string folder = opts_.dir + "/certs/" + app;
  const std::string bundle = folder + "/bundle.pem";
  FERRY_RETURN_IF_ERROR(make_private_dir(folder));
  // What the bundle holds now: the certificate served until a new one is issued.
  std::string pem = read_small_file(bundle);
  auto info = acme::read_cert_info(pem);
  Json meta = Json::parse(read_small_file(folder + "/meta.json"), nullptr, false);
  const std::string issued_by =
      meta.is_object() ? meta.value("directory", std::string()) : std::string();
  if (!info.ok()) {
    auto key = acme::EcKey::generate();
    if (!key.ok()) return key.status();
    auto cert = acme::placeholder_cert_pem(*key, spec.hosts, 90);
    if (!cert.ok()) return cert.status();
    FERRY_RETURN_IF_ERROR(write_private_file(bundle, key->private_pem() + *cert));
    info = acme::read_cert_info(*cert);
    if (!info.ok()) return info.status();
  }
  const int64_t now = now_ms();
  const bool current = !info->placeholder && as_set(info->names) == as_set(spec.hosts) &&
                       issued_by == spec.directory && info->not_after_ms > now;
  {
    MutexLock lock(mu_);
    auto& e = entries_[app];
    const bool fresh = !e || e->forgotten || e->spec != spec;
    if (!e) e = std::make_unique<Entry>();
    e->book = std::move(book);
    e->folder = folder;
    e->bundle = bundle;
    e->forgotten = false;
    if (fresh) {
      e->spec = spec;
      e->not_after_ms = info->placeholder ? 0 : info->not_after_ms;
      e->consecutive_failures = 0;
      e->next_attempt_ms = 0;
      e->error.clear();
      if (current) {
        e->state = "valid";
        e->renew_at_ms = renewal_time(info->not_before_ms, info->not_after_ms);
        e->due_ms = e->renew_at_ms;
      } else {
        e->state = "pending";
        e->renew_at_ms = 0;
        e->due_ms = now;
      }
    }
  }
  cv_.notify_all();
  return bundle;
}

void AcmeManager::forget(const std::string& app) {
  MutexLock lock(mu_);
  auto it = entries_.find(app);
  if (it == entries_.end()) return;
  if (it->second->running)
    it->second->forgotten = true;  // order() drops it when it returns
  else
    entries_.erase(it);
}

void AcmeManager::fill_status(const std::string& app, EdgeStatus& out) const {
  MutexLock lock(mu_);
  auto it = entries_.find(app);
  if (it == entries_.end() || it->second->forgotten) return;
  const Entry& e = *it->second;
  out.acme_state = e.state;
  out.cert_not_after_ms = e.not_after_ms;
  out.acme_renew_at_ms = e.renew_at_ms;
  out.acme_next_attempt_ms = e.next_attempt_ms;
  out.acme_issued = e.issued;
  out.acme_failures = e.failures;
  out.acme_error = e.error;
}

void AcmeManager::run() {
  MutexLock lock(mu_);
  while (!stopping_) {
    const int64_t now = now_ms();
    std::string due_app;
    int64_t next = now + 60'000;  // woken earlier by ensure() and poke()
    for (const auto& [app, e] : entries_) {
      if (e->forgotten || e->running || e->due_ms == 0) continue;
      if (e->due_ms <= now) {
        due_app = app;
        break;
      }
      next = std::min(next, e->due_ms);
    }
    if (!due_app.empty()) {
      entries_[due_app]->running = true;
      lock.unlock();
      order(due_app);
      lock.lock();
      continue;
    }
    // Wall time may be a fake clock: never sleep past a minute of real time either.
    lock.wait_until(cv_, std::chrono::steady_clock::now() +
                             std::chrono::milliseconds(std::clamp<int64_t>(next - now, 1, 60'000)));
  }
}

void AcmeManager::order(const std::string& app) {
  AcmeSpec spec;
  std::shared_ptr<AcmeChallengeBook> book;
  std::string folder, bundle;
  {
    MutexLock lock(mu_);
    const Entry& e = *entries_.at(app);
    spec = e.spec;
    book = e.book;
    folder = e.folder;
    bundle = e.bundle;
  }
  auto attempt = [&]() -> Result<acme::CertInfo> {
    // The account key: one per CA directory, made once, kept 0600.
    const std::string key_path = account_key_path(spec.directory);
    std::string key_pem = read_small_file(key_path);
    if (key_pem.empty()) {
      auto fresh = acme::EcKey::generate();
      if (!fresh.ok()) return fresh.status();
      key_pem = fresh->private_pem();
      FERRY_RETURN_IF_ERROR(write_private_file(key_path, key_pem));
    }
    auto account = acme::EcKey::from_pem(key_pem);
    if (!account.ok()) return account.status().with_context(key_path);
    std::unique_ptr<acme::Transport> transport =
        opts_.transport ? opts_.transport(spec)
                        : acme::make_curl_transport({.ca_bundle_file = spec.ca_bundle_file});
    acme::ClientOptions co;
    co.directory_url = spec.directory;
    co.email = spec.email;
    co.poll_interval_ms = opts_.poll_interval_ms;
    co.wait = [this](int ms) {
      MutexLock lock(mu_);
      lock.wait_for(cv_, std::chrono::milliseconds(ms),
                    [this]() FERRY_REQUIRES(mu_) { return stopping_; });
      return !stopping_;
    };
    acme::Client client(*transport, *account, co);
    acme::ChallengeResponder responder{
        [&book](const std::string& token, const std::string& answer) {
          if (book) book->publish(token, answer);
        },
        [&book](const std::string& token) {
          if (book) book->withdraw(token);
        }};
    auto issued = client.issue(spec.hosts, responder);
    if (!issued.ok()) return issued.status();
    auto info = acme::read_cert_info(issued->chain_pem);
    if (!info.ok()) return info.status();
    // The key first, then the chain: one file, replaced at once, so the router never
    // loads a key with another certificate.
    FERRY_RETURN_IF_ERROR(write_private_file(bundle, issued->key_pem + issued->chain_pem));
    FERRY_RETURN_IF_ERROR(write_private_file(
        folder + "/meta.json",
        Json{{"directory", spec.directory}, {"hosts", spec.hosts}, {"serial", info->serial}}
            .dump()));
    return *info;
  };
  auto result = attempt();
  const int64_t now = now_ms();
  MutexLock lock(mu_);
  auto it = entries_.find(app);
  if (it == entries_.end()) return;
  Entry& e = *it->second;
  e.running = false;
  if (e.forgotten) {
    entries_.erase(it);
    return;
  }
  if (e.spec != spec) {
    e.due_ms = now;  // the spec changed while ordering: order again for the new one
    return;
  }
  if (result.ok()) {
    e.state = "valid";
    e.issued++;
    e.consecutive_failures = 0;
    e.error.clear();
    e.next_attempt_ms = 0;
    e.not_after_ms = result->not_after_ms;
    e.renew_at_ms = renewal_time(result->not_before_ms, result->not_after_ms);
    e.due_ms = e.renew_at_ms;
    if (opts_.log)
      opts_.log->info("acme: certificate issued",
                      {{"app", app},
                       {"hosts", spec.hosts},
                       {"serial", result->serial},
                       {"not_after", format_rfc3339(from_unix_ms(result->not_after_ms))},
                       {"renew_at", format_rfc3339(from_unix_ms(e.renew_at_ms))}});
    return;
  }
  e.state = "failing";
  e.failures++;
  e.consecutive_failures = std::min(e.consecutive_failures + 1, 30);
  e.error = result.status().message();
  int64_t backoff = opts_.retry_min_ms;
  for (int i = 1; i < e.consecutive_failures && backoff < opts_.retry_max_ms; ++i) backoff *= 2;
  backoff = std::min(backoff, opts_.retry_max_ms);
  e.next_attempt_ms = now + backoff;
  e.due_ms = e.next_attempt_ms;
  if (opts_.log)
    opts_.log->warn("acme: certificate order failed",
                    {{"app", app},
                     {"hosts", spec.hosts},
                     {"directory", spec.directory},
                     {"error", e.error},
                     {"failures", e.consecutive_failures},
                     {"certificate_expires",
                      e.not_after_ms ? format_rfc3339(from_unix_ms(e.not_after_ms)) : "none"},
                     {"next_attempt", format_rfc3339(from_unix_ms(e.next_attempt_ms))}});
}

}  // namespace ferry
