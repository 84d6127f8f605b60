#include "server/leader.h"

#include <unistd.h>

#include "common/crypto.h"

namespace ferry {

std::string make_holder_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : "host") + "-" + std::to_string(::getpid()) + "-" +
         random_id("", 4);
}

LeaderElector::LeaderElector(Store& fenced, std::unique_ptr<Store> lease_store,
                             LeaderOptions options, Logger* log)
    : fenced_(fenced), lease_store_(std::move(lease_store)), opts_(std::move(options)), log_(log) {
  if (opts_.holder.empty()) opts_.holder = make_holder_id();
}

LeaderElector::~LeaderElector() {
  stop();
}

void LeaderElector::start() {
  {
    std::lock_guard lk(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
  }
  // The first attempt before start() returns: a lone server leads (and takes writes) as
  // soon as it serves, instead of forwarding them to nobody for a moment.
  const auto first_wait = tick();
  std::lock_guard lk(mu_);
  thread_ = std::thread([this, first_wait] { loop(first_wait); });
}

void LeaderElector::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  const int64_t token = this->token();
  if (token == 0) return;
  step_down("the server is stopping");
  // Ends the lease now: a standby takes over on its next try instead of after the lease.
  if (Status s = lease_store_->resign(opts_.holder, token); !s.ok() && log_)
    log_->warn("leader lease not resigned; a standby takes over when it lapses",
               {{"error", s.message()}});
}

bool LeaderElector::is_leader() const {
  std::lock_guard lk(mu_);
  return leader_;
}

int64_t LeaderElector::token() const {
  std::lock_guard lk(mu_);
  return leader_ ? token_ : 0;
}

LeaderLease LeaderElector::last_seen() const {
  std::lock_guard lk(mu_);
  return seen_;
}

void LeaderElector::loop(std::chrono::milliseconds wait) {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, wait, [this] { return stopping_ || fenced_signal_; });
    if (stopping_) break;
    lk.unlock();
    wait = tick();
    lk.lock();
  }
}

std::chrono::milliseconds LeaderElector::tick() {
  using std::chrono::milliseconds;
  const milliseconds renew_every(std::max<int64_t>(opts_.lease_ms / 3, 1));
  const milliseconds try_every(std::max<int64_t>(opts_.lease_ms / 6, 1));
  bool fenced = false, leader = false;
  int64_t token = 0;
  {
    std::lock_guard lk(mu_);
    fenced = fenced_signal_;
    fenced_signal_ = false;
    leader = leader_;
    token = token_;
  }
  if (fenced && leader) {
    step_down("a write was refused by the fencing token: another server took the lease");
    leader = false;
    token = 0;  // then read the lease below: who leads now
  }
  const auto sent = std::chrono::steady_clock::now();
  auto lease = lease_store_->try_lead(opts_.holder, opts_.address, opts_.lease_ms, token);
  if (!lease.ok()) {
    // Without the database this server cannot know whether another one took over: it
    // leads only until its lease would have lapsed by its own clock.
    bool lapsed = false;
    {
      std::lock_guard lk(mu_);
      lapsed = leader_ && std::chrono::steady_clock::now() >= valid_until_;
    }
    if (lapsed) step_down("the lease could not be renewed: " + lease.status().message());
    return leader ? renew_every : try_every;
  }
  {
    std::lock_guard lk(mu_);
    seen_ = *lease;
  }
  if (lease->holder != opts_.holder) {
    if (leader)
      step_down("server " + lease->holder + " holds the lease (token " +
                std::to_string(lease->token) + ")");
    return try_every;
  }
  {
    std::lock_guard lk(mu_);
    // The lease runs lease_ms from when the database ran the statement, which is after
    // `sent`: counting from `sent` errs on the safe side.
    valid_until_ = sent + milliseconds(opts_.lease_ms);
    if (leader_ && token_ == lease->token) return renew_every;
  }
  if (leader) step_down("the lease changed term");  // cannot happen; be safe
  // Fenced before anything runs: every write of this term carries the token.
  fenced_.set_fencing_token(lease->token, [this] {
    std::lock_guard lk(mu_);
    fenced_signal_ = true;
    cv_.notify_all();
  });
  {
    std::lock_guard lk(mu_);
    leader_ = true;
    token_ = lease->token;
  }
  if (log_)
    log_->info("elected leader",
               {{"holder", opts_.holder}, {"token", lease->token}, {"lease_ms", opts_.lease_ms}});
  if (opts_.on_elected) opts_.on_elected(lease->token);
  return renew_every;
}

void LeaderElector::step_down(const std::string& why) {
  int64_t token = 0;
  {
    std::lock_guard lk(mu_);
    if (!leader_) return;
    leader_ = false;
    token = token_;
  }
  if (log_) log_->warn("no longer the leader", {{"token", token}, {"why", why}});
  // The engine stops with the old token still set: anything it writes on its way out is
  // refused once another server leads.
  if (opts_.on_lost) opts_.on_lost(why);
  fenced_.set_fencing_token(0, {});
  std::lock_guard lk(mu_);
  token_ = 0;
}

}  // namespace ferry
