// Hosts for end-to-end tests: network namespaces the test makes itself, each joined to the
// root namespace by its own veth pair (a point-to-point /30 in 10.0.0.0/8), so a process in
// the root namespace (the server, the test's load) reaches every host at its own address and
// a host can be cut off (its link down) and brought back. Names carry the test's pid, the
// subnet is one no interface of this machine uses, and only what was made here is removed.
// Needs root and iproute2: `NetnsHosts::unavailable()` says why not, for a skip message.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "e2e/e2e_env.h"

namespace ferry::e2e {

class NetnsHosts {
 public:
  struct Host {
    std::string name;  // "a", "b", …
    std::string ns;    // the namespace: ferry-e2e-PID-NAME
    std::string veth;  // the end inside the namespace
    std::string peer;  // the end in the root namespace
    std::string addr;  // the host's address (inside the namespace)
    std::string peer_addr;
  };

  // "" when this process can make namespaces (root, `ip` installed), else why not.
  static std::string unavailable() {
    if (geteuid() != 0) return "network namespaces need root (the test runs `ip netns add`)";
    if (run("ip -V") != 0) return "iproute2 (`ip`) is not installed";
    return "";
  }

  // Makes one namespace per name; `error()` is non-empty when something failed.
  explicit NetnsHosts(const std::vector<std::string>& names) {
    const int pid = static_cast<int>(getpid());
    const int third = pick_subnet(pid);
    if (third < 0) {
      error_ = "no free 10.N.M.0/24 subnet found for the test's hosts";
      return;
    }
    for (size_t i = 0; i < names.size() && error_.empty(); ++i) {
      Host h;
      h.name = names[i];
      h.ns = "ferry-e2e-" + std::to_string(pid) + "-" + names[i];
      // Interface names are at most 15 bytes: "fe" + pid (≤ 7 digits) + index + side.
      h.veth = "fe" + std::to_string(pid % 10000000) + std::to_string(i) + "h";
      h.peer = "fe" + std::to_string(pid % 10000000) + std::to_string(i) + "r";
      const std::string net =
          "10." + std::to_string(third / 256) + "." + std::to_string(third % 256) + ".";
      h.peer_addr = net + std::to_string(4 * i + 1);
      h.addr = net + std::to_string(4 * i + 2);
      if (!step("ip netns add " + h.ns)) break;
      hosts_.push_back(h);
      if (!step("ip link add " + h.peer + " type veth peer name " + h.veth) ||
          !step("ip link set " + h.veth + " netns " + h.ns) ||
          !step("ip addr add " + h.peer_addr + "/30 dev " + h.peer) ||
          !step("ip link set " + h.peer + " up") || !step(in(h, "ip link set lo up")) ||
          !step(in(h, "ip addr add " + h.addr + "/30 dev " + h.veth)) ||
          !step(in(h, "ip link set " + h.veth + " up")))
        break;
    }
    // A link carries traffic once both its ends are up (the root end says "state UP").
    for (const auto& h : hosts_)
      if (error_.empty() && !link_up(h))
        error_ = "the link to host " + h.name + " (" + h.peer + ") did not come up";
  }
  ~NetnsHosts() {
    // Removing a namespace removes the veth end inside it, and so its peer.
    for (const auto& h : hosts_) {
      run("ip link del " + h.peer + " >/dev/null");
      run("ip netns del " + h.ns);
    }
  }
  NetnsHosts(const NetnsHosts&) = delete;
  NetnsHosts& operator=(const NetnsHosts&) = delete;

  const std::string& error() const { return error_; }
  const Host& host(size_t i) const { return hosts_.at(i); }
  size_t size() const { return hosts_.size(); }

  // The argv prefix that runs a program inside host `i` (`ip netns exec` execs it, so the
  // pid a launcher gets is the program's own).
  std::vector<std::string> exec_in(size_t i) const {
    return {"ip", "netns", "exec", hosts_.at(i).ns};
  }
  // Cuts host `i` off (its link down: nothing reaches it, nothing leaves it) or brings it back.
  bool cut(size_t i) { return step(in(hosts_.at(i), "ip link set " + hosts_[i].veth + " down")); }
  bool restore(size_t i) {
    return step(in(hosts_.at(i), "ip link set " + hosts_[i].veth + " up")) && link_up(hosts_[i]);
  }

 private:
  static std::string in(const Host& h, const std::string& cmd) {
    return "ip netns exec " + h.ns + " " + cmd;
  }
  static bool link_up(const Host& h) {
    return testing::wait_until(
        [&] {
          std::string out;
          return run("ip link show " + h.peer, &out) == 0 &&
                 out.find("state UP") != std::string::npos;
        },
        std::chrono::seconds(10));
  }
  bool step(const std::string& cmd) {
    std::string out;
    if (run(cmd, &out) == 0) return true;
    if (error_.empty()) error_ = "`" + cmd + "` failed: " + out;
    return false;
  }
  // A 10.N.M.0/24 (returned as N*256+M) that no address or route of this machine is in,
  // starting from one the pid picks, so two runs at once take different subnets.
  static int pick_subnet(int pid) {
    std::string routes;
    run("ip -4 route show table all; ip -4 addr show", &routes);
    for (int k = 0; k < 64; ++k) {
      const int third = 200 * 256 + (pid + k * 7919) % (56 * 256);  // 10.200.0.0-10.255.255.0
      const std::string net =
          "10." + std::to_string(third / 256) + "." + std::to_string(third % 256) + ".";
      if (routes.find(net) == std::string::npos) return third;
    }
    return -1;
  }

  std::vector<Host> hosts_;
  std::string error_;
};

}  // namespace ferry::e2e
