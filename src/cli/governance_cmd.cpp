// Verbs of governance: approve, override, secrets, audit.
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "cli/client.h"
#include "common/http_types.h"
#include "governance/audit_chain.h"

namespace ferry::cli {

namespace {

AuditRecord audit_from_json(const Json& j) {
  AuditRecord a;
  a.seq = j.value("seq", int64_t{0});
  a.time_ms = j.value("time_ms", int64_t{0});
  a.actor = j.value("actor", "");
  a.action = j.value("action", "");
  a.app = j.value("app", "");
  a.env = j.value("env", "");
  a.release = j.value("release", "");
  a.git_sha = j.value("git_sha", "");
  a.source_addr = j.value("source_addr", "");
  a.details = j.value("details", Json::object());
  a.prev_hash = j.value("prev_hash", "");
  a.hash = j.value("hash", "");
  return a;
}

// Every audit entry from the server, oldest first, page by page.
std::vector<Json> fetch_audit(const GlobalOptions& g) {
  std::vector<Json> all;
  int64_t after = 0;
  while (true) {
    Json page = api_call(g, "GET", "/api/v1/audit?limit=5000&after=" + std::to_string(after));
    if (page["entries"].empty()) break;
    for (const auto& e : page["entries"]) all.push_back(e);
    after = all.back().value("seq", after);
  }
  return all;
}

}  // namespace

void register_governance_commands(CLI::App& app, GlobalOptions& g) {
  struct Args {
    std::string app, release, env, comment, id, reason, name, value, file, out, expect_head,
        key_file, gate = "window";
    bool stdin_value = false;
  };
  auto a = std::make_shared<Args>();

  auto* approve =
      app.add_subcommand("approve", "approve a release for an environment (two-person rule)");
  approve->add_option("app", a->app)->required();
  approve->add_option("release", a->release)->required();
  approve->add_option("--env,-e", a->env)->required();
  approve->add_option("--comment,-m", a->comment, "why it is fine to ship");
  approve->callback([a, &g] {
    Json body{{"app", a->app}, {"env", a->env}, {"release", a->release}, {"comment", a->comment}};
    Json r = api_call(g, "POST", "/api/v1/approvals", &body);
    std::cout << a->app << "@" << a->release << " approved for " << a->env << " by "
              << r.value("approver", "") << "\n";
  });

  auto* ov =
      app.add_subcommand("override",
                         "let a waiting deployment past its window or freeze, or its SLO gate "
                         "(admin)");
  ov->add_option("id", a->id, "deployment id")->required();
  ov->add_option("--reason", a->reason, "why (audited)")->required();
  ov->add_option("--gate", a->gate, "window (windows and freezes, the default) or slo")
      ->check(CLI::IsMember({"window", "slo"}));
  ov->callback([a, &g] {
    Json body{{"reason", a->reason}, {"gate", a->gate}};
    api_call(g, "POST", "/api/v1/deployments/" + url_encode(a->id) + "/override", &body);
    std::cout << "override recorded for " << a->id << "\n";
  });

  auto* secrets = app.add_subcommand("secrets", "encrypted secrets injected into instances");
  secrets->require_subcommand(1);
  auto* set = secrets->add_subcommand("set", "set a secret (value from --value or stdin)");
  set->add_option("app", a->app)->required();
  set->add_option("name", a->name)->required();
  set->add_option("--env,-e", a->env)->required();
  set->add_option("--value", a->value, "the value (prefer stdin: it stays out of shell history)");
  set->callback([a, &g] {
    std::string value = a->value;
    if (value.empty()) {
      if (isatty(0)) std::cerr << "value for " << a->name << ": " << std::flush;
      std::getline(std::cin, value);
    }
    if (value.empty()) fail("empty secret value");
    Json body{{"value", value}};
    api_call(g, "PUT",
             "/api/v1/apps/" + url_encode(a->app) + "/envs/" + url_encode(a->env) + "/secrets/" +
                 url_encode(a->name),
             &body);
    std::cout << "secret " << a->name << " set for " << a->app << " in " << a->env
              << " (running instances are replaced, each once its successor is ready)\n";
  });
  auto* list = secrets->add_subcommand("list", "names of an app's secrets (never values)");
  list->add_option("app", a->app)->required();
  list->add_option("--env,-e", a->env)->required();
  list->callback([a, &g] {
    Json r =
        api_call(g, "GET",
                 "/api/v1/apps/" + url_encode(a->app) + "/envs/" + url_encode(a->env) + "/secrets");
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    for (const auto& s : r["secrets"])
      std::cout << fmt::format("{:<32} {} by {}\n", s.value("name", ""),
                               local_time(s.value("updated_at_ms", int64_t{0})),
                               s.value("updated_by", ""));
  });
  auto* unset = secrets->add_subcommand("unset", "remove a secret");
  unset->add_option("app", a->app)->required();
  unset->add_option("name", a->name)->required();
  unset->add_option("--env,-e", a->env)->required();
  unset->callback([a, &g] {
    api_call(g, "DELETE",
             "/api/v1/apps/" + url_encode(a->app) + "/envs/" + url_encode(a->env) + "/secrets/" +
                 url_encode(a->name));
    std::cout << "secret " << a->name << " removed\n";
  });

  auto* audit = app.add_subcommand("audit", "the hash-chained audit log");
  audit->require_subcommand(1);
  auto* al = audit->add_subcommand("list", "audit entries, oldest first");
  al->callback([&g] {
    for (const auto& e : fetch_audit(g)) {
      if (g.json) {
        std::cout << e.dump() << "\n";
        continue;
      }
      std::string what = e.value("app", "");
      if (!e.value("release", "").empty()) what += "@" + e.value("release", "");
      if (!e.value("env", "").empty()) what += " → " + e.value("env", "");
      std::cout << fmt::format("{:>6} {} {:<22} {:<28} {}\n", e.value("seq", int64_t{0}),
                               local_time(e.value("time_ms", int64_t{0})), e.value("actor", ""),
                               e.value("action", ""), what);
    }
  });
  auto* ae = audit->add_subcommand("export", "every entry as JSON lines (to verify elsewhere)");
  ae->add_option("--out,-o", a->out, "file (default stdout)");
  ae->callback([a, &g] {
    std::ofstream f;
    if (!a->out.empty()) {
      f.open(a->out);
      if (!f) fail("cannot write " + a->out);
    }
    std::ostream& os = a->out.empty() ? std::cout : f;
    size_t n = 0;
    for (const auto& e : fetch_audit(g)) {
      os << e.dump() << "\n";
      ++n;
    }
    if (!a->out.empty()) std::cerr << n << " entries written to " << a->out << "\n";
  });
  auto* av =
      audit->add_subcommand("verify", "check the hash chain; names the first tampered entry");
  av->add_option("--file,-f", a->file, "verify an export instead of the server's log");
  av->add_option("--key-file", a->key_file, "the server's audit key (needed with --file)");
  av->add_option("--expect-head", a->expect_head,
                 "SEQ:HASH kept elsewhere (GET /api/v1/audit/head, notifications, the log): "
                 "fails when the log was truncated or rewritten since");
  av->callback([a, &g] {
    std::optional<std::pair<int64_t, std::string>> expect;
    if (!a->expect_head.empty()) {
      auto e = parse_audit_head(a->expect_head);
      if (!e.ok()) fail("--expect-head: " + e.status().message());
      expect = *e;
    }
    if (a->file.empty()) {
      std::string target = "/api/v1/audit/verify";
      if (expect) target += "?expect_head=" + url_encode(a->expect_head);
      Json r = api_call(g, "GET", target);
      if (g.json) std::cout << r.dump(2) << "\n";
      if (!r.value("ok", false)) {
        if (!g.json)
          std::cout << "audit chain BROKEN"
                    << (r.contains("first_bad_seq")
                            ? " at entry " + std::to_string(r.value("first_bad_seq", int64_t{0}))
                            : std::string())
                    << ": " << r.value("reason", "") << "\n";
        throw CLI::RuntimeError(1);
      }
      if (!g.json)
        std::cout << "audit chain ok: " << r.value("entries", int64_t{0}) << " entries, head "
                  << r.value("last_seq", int64_t{0}) << ":" << r.value("last_hash", "") << "\n";
      return;
    }
    // An export: checked line by line (never all in memory) with the key.
    if (a->key_file.empty()) fail("--file needs --key-file: the chain is keyed (HMAC-SHA-256)");
    std::ifstream kf(a->key_file, std::ios::binary);
    std::string key((std::istreambuf_iterator<char>(kf)), {});
    if (!kf && key.empty()) fail("cannot read " + a->key_file);
    if (key.size() != 32) fail(a->key_file + " must hold exactly 32 bytes");
    std::ifstream f(a->file);
    if (!f) fail("cannot read " + a->file);
    KeyedAuditVerifier v(key);
    std::string line, hash_at_expected;
    int64_t n = 0, entries = 0;
    while (std::getline(f, line)) {
      ++n;
      if (line.empty()) continue;
      auto j = parse_json(line);
      if (!j.ok()) fail(a->file + ":" + std::to_string(n) + ": not a JSON audit entry");
      const AuditRecord e = audit_from_json(*j);
      ++entries;
      if (expect && e.seq == expect->first) hash_at_expected = e.hash;
      if (!v.add(e)) break;
    }
    const AuditVerify& r = v.finish();
    if (!r.ok) {
      std::cout << "audit chain BROKEN at entry " << r.bad_seq << ": " << r.reason << "\n";
      throw CLI::RuntimeError(1);
    }
    if (expect) {
      Status s = check_expected_head(r, expect->first, expect->second, hash_at_expected);
      if (!s.ok()) {
        std::cout << "audit chain BROKEN: " << s.message() << "\n";
        throw CLI::RuntimeError(1);
      }
    }
    std::cout << "audit chain ok: " << entries << " entries, head " << r.last_seq << ":"
              << r.last_hash << "\n";
  });
}

}  // namespace ferry::cli
