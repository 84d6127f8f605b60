// AcmeManager: the agent's certificates from an ACME CA (apps.<name>.tls.acme). For each
// app it keeps one PEM bundle (key, then the chain; 0600) in DATA_DIR/acme/certs/APP/ that
// the app's router loads as its certificate and reloads when it changes, so issuance and
// renewal never restart the router. Until the first certificate is issued the bundle holds
// a self-signed placeholder (clients see an untrusted certificate, not a closed port).
//
// One thread of its own runs the orders (blocking HTTPS to the CA), one at a time. A
// certificate is renewed at 2/3 of its lifetime with a jitter of ±lifetime/90; a failed
// order is retried after retry_min_ms, doubling up to retry_max_ms, and reported (a
// warning log line "acme: certificate order failed", EdgeStatus::acme_state "failing",
// acme_error, acme_failures; the Prometheus rules alert on them). The account key (one per
// directory URL, P-256) is DATA_DIR/acme/account-HASH.pem, 0600.
//
// Thread-safe: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "acme/transport.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "core/agent_api.h"
#include "core/spec.h"
#include "router/tls_challenges.h"

namespace ferry {

struct AcmeManagerOptions {
  std::string dir;               // made 0700 when missing
  const Clock* clock = nullptr;  // wall time for renewal; null: the system clock
  Logger* log = nullptr;
  int64_t retry_min_ms = 60'000;
  int64_t retry_max_ms = 6 * 3'600'000LL;
  int poll_interval_ms = 1000;  // while the CA validates and issues
  // The transport to the CA of `spec` (null: HTTPS through libcurl with spec.ca_bundle_file).
  std::function<std::unique_ptr<acme::Transport>(const AcmeSpec& spec)> transport;
};

class AcmeManager {
 public:
  explicit AcmeManager(AcmeManagerOptions options);
  ~AcmeManager();  // stop()
  AcmeManager(const AcmeManager&) = delete;
  AcmeManager& operator=(const AcmeManager&) = delete;

  // Makes the folder and starts the ACME thread. An error names the folder.
  Status start();
  // Stops the thread (an order in progress ends at its next step).
  void stop();

  // The app's router should serve `spec.hosts` with a certificate from `spec.directory`:
  // returns the bundle file the router loads (written with a placeholder when none is
  // there yet) and schedules an order now when the bundle does not already hold a
  // certificate from that CA for exactly those names, else at its renewal time. `book` is
  // where the HTTP-01 answers are published (the router's). kInvalidArgument for an app
  // name that cannot be a folder name; kInternal when the folder cannot be written.
  Result<std::string> ensure(const std::string& app, const AcmeSpec& spec,
                             std::shared_ptr<AcmeChallengeBook> book);
  // The app left the agent: no more orders (its files stay for when it comes back).
  void forget(const std::string& app);
  // Fills the acme_* fields and cert_not_after_ms of `out` (nothing when the app has no
  // ACME certificate here).
  void fill_status(const std::string& app, EdgeStatus& out) const;
  // Checks what is due now (after a fake clock moved; the thread also wakes on its own).
  void poke();

 private:
  struct Entry;
  void run();
  // Runs one order for `app` outside the lock and records its outcome.
  void order(const std::string& app);
  int64_t now_ms() const;
  std::string account_key_path(const std::string& directory) const;

  AcmeManagerOptions opts_;
  SystemClock system_clock_;
  const Clock& clock_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::unique_ptr<Entry>> entries_ FERRY_GUARDED_BY(mu_);
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  bool started_ = false;
  std::thread thread_;
};

}  // namespace ferry
