#include "agent/docker_runtime.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

namespace ferry {

namespace fs = std::filesystem;

struct DockerRuntime::Follower {
  std::string id;
  std::string log_path;
  double since = 0;  // unix seconds: output from here on (0: all)
  std::thread thread;
  std::atomic<int> fd{-1};  // the followed stream's connection, for shutdown()
  std::atomic<bool> stop{false};
  std::optional<int> exit;  // guarded by DockerRuntime::mu_
};

namespace {

// An image reference as configuration.md allows (the config checks it too): the runtime
// puts it in URLs and a JSON body.
bool docker_ref_ok(const std::string& ref) {
  if (ref.empty() || ref.size() > 512 || !std::isalnum(static_cast<unsigned char>(ref[0])))
    return false;
  for (char c : ref)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '/' || c == ':' || c == '@'))
      return false;
  return true;
}

// "name" → ("name", "latest"); "host:5000/name:tag" → ("host:5000/name", "tag"); a digest
// ("name@sha256:…") is kept whole with no tag.
std::pair<std::string, std::string> split_ref(const std::string& ref) {
  if (ref.find('@') != std::string::npos) return {ref, ""};
  const size_t slash = ref.rfind('/');
  const size_t colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    return {ref.substr(0, colon), ref.substr(colon + 1)};
  return {ref, "latest"};
}

// Docker container names: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
std::string container_name(const std::string& app, const std::string& instance) {
  std::string n = "ferry-" + app + "-" + instance + "-";
  for (char& c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) c = '_';
  static const char* kHex = "0123456789abcdef";
  std::random_device rd;
  for (int i = 0; i < 8; ++i) n += kHex[rd() & 15];
  return n;
}

int exit_code_of(const Json& state) {
  const int code = state.value("ExitCode", 0);
  // dockerd reports a death by signal N as 128+N; processes report -N.
  if (code > 128 && code <= 128 + 64) return -(code - 128);
  return code;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void sleep_unless(const std::atomic<bool>& stop, int ms) {
  for (int waited = 0; waited < ms && !stop; waited += 50)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

}  // namespace

DockerRuntime::DockerRuntime(DockerRuntimeOptions options)
    : opts_(std::move(options)), api_(opts_.socket, opts_.api_timeout_ms) {}

DockerRuntime::~DockerRuntime() {
  std::map<std::string, std::shared_ptr<Follower>> all;
  {
    std::lock_guard lk(mu_);
    closing_ = true;
    all.swap(followers_);
  }
  for (auto& [id, f] : all) {
    f->stop = true;
    if (const int fd = f->fd.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& [id, f] : all)
    if (f->thread.joinable()) f->thread.join();
}

std::string DockerRuntime::log_path(const std::string& app, const std::string& instance) const {
  return opts_.log_dir + "/" + app + "/" + instance + ".log";
}

Status DockerRuntime::pull_image(const std::string& image) {
  const auto [name, tag] = split_ref(image);
  std::string target = "/images/create?fromImage=" + url_encode(name);
  if (!tag.empty()) target += "&tag=" + url_encode(tag);
  auto r = api_.call("POST", target, {}, "application/json", opts_.pull_timeout_ms);
  if (!r.ok()) return r.status();
  std::string error;
  if (r->status != 200) {
    error = docker_message(*r);
  } else {
    // A pull answers 200 and streams progress; a failure is a line with "error".
    size_t at = 0;
    while (at < r->body.size() && error.empty()) {
      size_t end = r->body.find('\n', at);
      if (end == std::string::npos) end = r->body.size();
      if (auto j = parse_json(std::string_view(r->body).substr(at, end - at), "pull progress");
          j.ok() && j->is_object() && j->contains("error") && (*j)["error"].is_string())
        error = (*j)["error"].get<std::string>();
      at = end + 1;
    }
  }
  if (error.empty()) return Status::Ok();
  return unavailable("pulling image " + image + " failed: " + error.substr(0, 300));
}

Status DockerRuntime::ensure_image(const std::string& image, PullPolicy pull) {
  if (!docker_ref_ok(image))
    return invalid_argument("image '" + image.substr(0, 64) +
                            "' is not an image reference (letters, digits, . _ - / : @)");
  bool present = false;
  if (pull != PullPolicy::kAlways) {
    auto r = api_.call("GET", "/images/" + image + "/json");
    if (!r.ok()) return r.status();
    if (r->status != 200 && r->status != 404)
      return unavailable("looking up image " + image + ": dockerd answered " +
                         std::to_string(r->status) + ": " + docker_message(*r));
    present = r->status == 200;
  }
  if (present) return Status::Ok();
  if (pull == PullPolicy::kNever)
    return failed_precondition("image " + image +
                               " is not on this host and run.pull is never: build or load it on "
                               "the host first (docker build, docker load)");
  Status s = pull_image(image);
  if (s.ok()) return s;
  return Status(s.code(), "image " + image + " could not be made present (run.pull: " +
                              pull_policy_name(pull) + "): " + s.message() +
                              "; where no registry is reachable, build or load the image on "
                              "the host (docker build, docker load) and use run.pull: missing "
                              "or never");
}

Result<RuntimeHandle> DockerRuntime::start(const LaunchSpec& launch) {
  if (launch.image.empty()) return invalid_argument("the docker runtime needs run.image");
  if (Status s = ensure_image(launch.image, launch.pull); !s.ok()) return s;
  const size_t dot = launch.app.rfind('.');
  Json labels{{"ferry.app", launch.app.substr(0, dot)},
              {"ferry.env", dot == std::string::npos ? "" : launch.app.substr(dot + 1)},
              {"ferry.release", launch.release},
              {"ferry.instance", launch.instance},
              {"ferry.agent", opts_.agent_id}};
  Json env = Json::array();
  for (const auto& [k, v] : launch.env) env.push_back(k + "=" + v);
  Json host{
      {"NetworkMode", "host"},
      {"RestartPolicy", {{"Name", "no"}}},
      // dockerd's own copy of the output stays small: ferry's log file is the record.
      {"LogConfig", {{"Type", "json-file"}, {"Config", {{"max-size", "1m"}, {"max-file", "1"}}}}}};
  if (launch.cpus > 0) host["NanoCpus"] = static_cast<int64_t>(std::llround(launch.cpus * 1e9));
  if (launch.memory_bytes > 0) host["Memory"] = launch.memory_bytes;
  Json body{{"Image", launch.image}, {"Env", env},         {"Labels", labels},
            {"Tty", false},          {"OpenStdin", false}, {"HostConfig", host}};
  if (!launch.argv.empty()) body["Cmd"] = launch.argv;
  if (!launch.user.empty()) body["User"] = launch.user;
  if (!launch.cwd.empty()) body["WorkingDir"] = launch.cwd;

  const std::string name = container_name(launch.app, launch.instance);
  {
    std::lock_guard lk(mu_);
    if (closing_) return unavailable("the agent is stopping");
    creating_.insert(name);
  }
  auto forget = [&] {
    std::lock_guard lk(mu_);
    creating_.erase(name);
  };
  auto created = api_.json("POST", "/containers/create?name=" + name,
                           "creating a container of image " + launch.image, dump_json(body));
  if (!created.ok()) {
    forget();
    return created.status();
  }
  const std::string id = created->value("Id", "");
  auto started = api_.call("POST", "/containers/" + id + "/start");
  auto state = started.ok() && started->status / 100 == 2 ? api_.inspect(id) : Result<Json>(Json());
  if (!started.ok() || started->status / 100 != 2 || !state.ok()) {
    (void)api_.call("DELETE", "/containers/" + id + "?force=1");
    forget();
    if (!started.ok()) return started.status();
    if (!state.ok()) return state.status();
    return invalid_argument("starting a container of image " + launch.image + ": " +
                            docker_message(*started));
  }
  RuntimeHandle h;
  h.id = id;
  h.pid = (*state)["State"].value("Pid", 0);
  const std::string log = log_path(launch.app, launch.instance);
  std::error_code ec;
  fs::create_directories(fs::path(log).parent_path(), ec);
  follow(id, log, 0);
  forget();
  return h;
}

void DockerRuntime::follow(const std::string& id, const std::string& log_path, double since) {
  auto f = std::make_shared<Follower>();
  f->id = id;
  f->log_path = log_path;
  f->since = since;
  std::lock_guard lk(mu_);
  if (closing_) return;
  followers_[id] = f;
  f->thread = std::thread([this, f] { run_follower(f); });
}

void DockerRuntime::run_follower(std::shared_ptr<Follower> f) {
  const int out = ::open(f->log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  double since = f->since;
  std::optional<int> code;
  while (!f->stop) {
    std::string target = "/containers/" + f->id + "/logs?follow=1&stdout=1&stderr=1";
    if (since > 0) target += "&since=" + std::to_string(since);
    LogDemux demux;
    std::string text;
    (void)api_.stream(
        target,
        [&](std::string_view data) {
          text.clear();
          demux.feed(data, &text);
          if (out >= 0 && !text.empty()) (void)!::write(out, text.data(), text.size());
          return !f->stop.load();
        },
        &f->fd);
    if (f->stop) break;
    auto state = api_.inspect(f->id);
    if (!state.ok() && state.status().code() == Code::kNotFound) {
      code = kExitUnknown;  // removed from outside
      break;
    }
    if (!state.ok()) {  // dockerd unreachable: it may come back with the container
      sleep_unless(f->stop, 1000);
      continue;
    }
    const Json& st = (*state)["State"];
    if (st.value("Running", false)) {  // the stream broke, the program runs on
      since = unix_now();
      sleep_unless(f->stop, 200);
      continue;
    }
    code = exit_code_of(st);
    (void)api_.call("DELETE", "/containers/" + f->id + "?force=1");
    break;
  }
  if (out >= 0) ::close(out);
  if (code) {
    std::lock_guard lk(mu_);
    f->exit = code;
  }
}

std::optional<int> DockerRuntime::exit_status(const RuntimeHandle& h) {
  std::shared_ptr<Follower> done;
  {
    std::lock_guard lk(mu_);
    auto it = followers_.find(h.id);
    if (it == followers_.end()) return kExitUnknown;  // not ours, or reported already
    if (!it->second->exit) return std::nullopt;
    done = it->second;
    followers_.erase(it);
  }
  if (done->thread.joinable()) done->thread.join();  // it ended when it set exit
  return done->exit;
}

void DockerRuntime::stop(const RuntimeHandle& h, StopMode mode) {
  if (h.id.empty()) return;
  // 409 (not running) and 404 (gone) need nothing more: the follower reports the end.
  (void)api_.call("POST", "/containers/" + h.id +
                              "/kill?signal=" + (mode == StopMode::kKill ? "SIGKILL" : "SIGTERM"));
}

bool DockerRuntime::alive(const RuntimeHandle& h) {
  {
    std::lock_guard lk(mu_);
    auto it = followers_.find(h.id);
    if (it != followers_.end()) return !it->second->exit;
  }
  if (h.id.empty()) return false;
  auto state = api_.inspect(h.id);
  return state.ok() && (*state)["State"].value("Running", false);
}

bool DockerRuntime::adopt(const RuntimeHandle& h) {
  if (h.id.empty()) return false;
  {
    std::lock_guard lk(mu_);
    if (followers_.count(h.id)) return true;
  }
  auto state = api_.inspect(h.id);
  if (!state.ok()) return false;
  const Json& labels = (*state)["Config"]["Labels"];
  if (!labels.is_object() || labels.value("ferry.agent", "") != opts_.agent_id) return false;
  if (!(*state)["State"].value("Running", false)) {
    (void)api_.call("DELETE", "/containers/" + h.id + "?force=1");
    return false;
  }
  const std::string app = labels.value("ferry.app", "") + "." + labels.value("ferry.env", "");
  const std::string log = log_path(app, labels.value("ferry.instance", ""));
  // Output from the log file's last write on: nothing is lost, a line or two may repeat.
  double since = unix_now();
  struct stat sb {};
  if (::stat(log.c_str(), &sb) == 0)
    since = static_cast<double>(sb.st_mtim.tv_sec) + sb.st_mtim.tv_nsec / 1e9;
  std::error_code ec;
  fs::create_directories(fs::path(log).parent_path(), ec);
  follow(h.id, log, since);
  return true;
}

std::vector<std::string> DockerRuntime::tracked() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [id, f] : followers_)
    if (!f->exit) out.push_back(id);
  return out;
}

Result<int> DockerRuntime::remove_strays() {
  const Json filters{{"label", Json::array({"ferry.agent=" + opts_.agent_id})}};
  auto list = api_.json("GET", "/containers/json?all=1&filters=" + url_encode(dump_json(filters)),
                        "listing this agent's containers");
  if (!list.ok()) return list.status();
  int removed = 0;
  for (const auto& c : *list) {
    const std::string id = c.value("Id", "");
    std::string name;
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty())
      name = c["Names"][0].get<std::string>();
    if (name.starts_with("/")) name.erase(0, 1);
    {
      std::lock_guard lk(mu_);
      if (followers_.count(id) || creating_.count(name)) continue;
    }
    auto r = api_.call("DELETE", "/containers/" + id + "?force=1");
    if (r.ok() && r->status / 100 == 2) ++removed;
  }
  return removed;
}

}  // namespace ferry
