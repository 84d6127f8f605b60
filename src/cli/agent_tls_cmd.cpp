// Mutual TLS for remote agents (docs/operations.md, "Many hosts"):
//   ferry agent init --tls-dir DIR --name NAME      the agent's key (0600) and CSR
//   ferry agents enroll NAME                         admin: a one-time join token
//   ferry agent join --tls-dir DIR --name NAME --token T [--ca-sha256 H]
//                                                    the CSR signed by the server's CA
//   ferry agents revoke NAME                         admin: revokes NAME's certificates
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/client.h"
#include "cli/commands.h"
#include "common/crypto.h"
#include "common/tls.h"

namespace ferry::cli {

namespace {

namespace fs = std::filesystem;

void write_private(const fs::path& p, const std::string& text) {
  {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    if (!f) fail("cannot write " + p.string());
  }
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) fail("cannot write " + p.string());
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail("cannot read " + p.string() + "; run `ferry agent init` first");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

void register_agent_tls_commands(CLI::App& app, CLI::App& agent, GlobalOptions& g) {
  struct Args {
    std::string tls_dir, name, token, ca_sha256;
  };
  auto a = std::make_shared<Args>();

  auto* init = agent.add_subcommand("init", "make this agent's TLS key (0600) and CSR");
  init->add_option("--tls-dir", a->tls_dir, "where the key and CSR go (e.g. DATA_DIR/tls)")
      ->required();
  init->add_option("--name", a->name, "the agent's name in ferry.yaml")->required();
  init->callback([a] {
    std::error_code ec;
    fs::create_directories(a->tls_dir, ec);
    fs::permissions(a->tls_dir, fs::perms::owner_all, ec);
    const fs::path d(a->tls_dir);
    if (fs::exists(d / "agent.key")) fail((d / "agent.key").string() + " exists; not replaced");
    auto key = make_private_key();
    if (!key.ok()) fail(key.status().message());
    auto csr = make_csr(*key, a->name);
    if (!csr.ok()) fail(csr.status().message());
    write_private(d / "agent.key", *key);
    write_private(d / "agent.csr", *csr);
    std::cout << "key: " << (d / "agent.key").string() << "\ncsr: " << (d / "agent.csr").string()
              << "\nnext: an admin runs `ferry agents enroll " << a->name
              << "`, then here: ferry agent join --tls-dir " << a->tls_dir << " --name " << a->name
              << " --token TOKEN --ca-sha256 HASH\n";
  });

  auto* join = agent.add_subcommand("join", "get this agent's certificate from the server");
  join->add_option("--tls-dir", a->tls_dir, "where `ferry agent init` put the key and CSR")
      ->required();
  join->add_option("--name", a->name, "the agent's name in ferry.yaml")->required();
  join->add_option("--token", a->token, "the one-time join token from `ferry agents enroll`")
      ->required();
  join->add_option("--ca-sha256", a->ca_sha256,
                   "the CA's SHA-256 that `ferry agents enroll` printed: the answer's CA must "
                   "match it");
  join->callback([a, &g] {
    const fs::path d(a->tls_dir);
    Json body{{"token", a->token}, {"csr", read_all(d / "agent.csr")}};
    HttpClient c = api_client(g);
    auto r = c.call("POST", "/enroll/v1/agents/" + a->name + "/join", &body);
    if (!r.ok()) fail("join refused: " + r.status().message(), 1);
    const std::string ca = r->value("ca", "");
    const std::string cert = r->value("cert", "");
    if (!a->ca_sha256.empty() && sha256_hex(ca) != a->ca_sha256)
      fail("the server's CA has SHA-256 " + sha256_hex(ca) + ", not " + a->ca_sha256 +
               "; nothing written",
           1);
    write_private(d / "ca.crt", ca);
    write_private(d / "agent.crt", cert);
    std::cout << "certificate: " << (d / "agent.crt").string()
              << "\nstart the agent with --tls-dir " << a->tls_dir << "\n";
  });

  auto* agents = app.add_subcommand(
      "agents", "remote agents: certificates, in or out of load balancers (admin)");
  agents->require_subcommand(1);
  auto* enroll = agents->add_subcommand("enroll", "a one-time join token for an agent");
  enroll->add_option("name", a->name, "the agent's name in ferry.yaml")->required();
  enroll->callback([a, &g] {
    Json body = Json::object();
    Json r = api_call(g, "POST", "/api/v1/agents/" + a->name + "/enroll", &body);
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    std::cout << "join token (once, " << r.value("expires_in_s", 0)
              << " s): " << r.value("token", "") << "\nCA SHA-256: " << r.value("ca_sha256", "")
              << "\n";
  });
  auto* revoke = agents->add_subcommand(
      "revoke",
      "revoke an agent's certificates (or `ferry-server`: the server's own, replaced at once); "
      "every agent is told");
  revoke->add_option("name", a->name, "the agent's name in ferry.yaml, or ferry-server")
      ->required();
  revoke->callback([a, &g] {
    Json body = Json::object();
    Json r = api_call(g, "POST", "/api/v1/agents/" + a->name + "/revoke", &body);
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    std::cout << "revoked: " << r["revoked"].dump() << "\n";
    for (const auto& b : r.value("agents_behind", Json::array()))
      std::cout << "not told yet (retried until it is): " << b.get<std::string>() << "\n";
  });
  for (const bool out : {true, false}) {
    auto* c = agents->add_subcommand(out ? "out" : "in",
                                     out ? "take a host out of the load balancers in front of "
                                           "the hosts (its routers keep serving)"
                                         : "put a host back into the load balancers");
    c->add_option("name", a->name, "the agent's name in ferry.yaml")->required();
    c->callback([a, &g, out] {
      Json body = Json::object();
      Json r = api_call(g, "POST", "/api/v1/agents/" + a->name + (out ? "/out" : "/in"), &body);
      std::cout << (g.json ? r.dump(2)
                           : a->name + (out ? ": out of the load balancers (readiness 503)"
                                            : ": back in the load balancers"))
                << "\n";
    });
  }
}

}  // namespace ferry::cli
