// `ferry store check` and `ferry store copy`: offline work on the control plane's store.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>

#include "cli/client.h"
#include "cli/commands.h"
#include "config/loader.h"
#include "governance/audit_chain.h"
#include "store/copy.h"
#include "store/store.h"

namespace ferry::cli {
namespace {

struct StoreArgs {
  std::string config = "ferry.yaml", store, from, to, audit_key_file;
};

std::string store_url_from(const StoreArgs& a) {
  if (!a.store.empty()) return a.store;
  auto cfg = load_config(a.config);
  if (!cfg.ok()) fail(cfg.status().message());
  return cfg->server.store;
}

// The server's audit key for `store copy --audit-key-file`, read before anything is
// copied: a missing or malformed key file is an error (exit 2) with nothing copied.
std::string read_copy_audit_key(const std::string& key_file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(key_file, ec))
    fail("--audit-key-file " + key_file + " does not exist (the server's audit key, e.g. " +
         "DATA_DIR/audit.key); nothing was copied");
  std::ifstream kf(key_file, std::ios::binary);
  std::string key((std::istreambuf_iterator<char>(kf)), {});
  if (!kf.good() && !kf.eof()) fail("--audit-key-file " + key_file + " cannot be read");
  if (key.size() != 32)
    fail("--audit-key-file " + key_file + " must hold exactly 32 bytes (the server's audit " +
         "key), it holds " + std::to_string(key.size()) + "; nothing was copied");
  return key;
}

// The copied chain checked with the server's audit key: every entry's HMAC, not only
// the links (the copy's own verification compares the entries and their links).
AuditVerify verify_keyed(const std::string& url, const std::string& key) {
  auto store = open_store(url);
  if (!store.ok()) fail(store.status().message());
  KeyedAuditVerifier v(key);
  int64_t after = 0;
  for (;;) {
    auto page = (*store)->list_audit(after, 1000);
    if (!page.ok()) fail(page.status().message());
    if (page->empty()) break;
    for (const auto& e : *page)
      if (!v.add(e)) break;
    if (!v.result().ok) break;
    after = page->back().seq;
  }
  return v.finish();
}

}  // namespace

void register_store_commands(CLI::App& app, GlobalOptions& g) {
  auto a = std::make_shared<StoreArgs>();
  auto* store = app.add_subcommand("store", "the control plane's store");
  store->require_subcommand(1);

  // A full integrity check, offline (the server may run; SQLite reads a consistent
  // snapshot). Exit 0 sound, 1 damaged, 2 error.
  auto* check = store->add_subcommand("check", "full integrity check of the store");
  check->add_option("--config,-c", a->config, "ferry.yaml")->capture_default_str();
  check->add_option("--store", a->store, "store URL (default from the config)");
  check->callback([a, &g] {
    const std::string url = store_url_from(*a);
    auto problems = check_store(url);
    if (!problems.ok()) fail(problems.status().message());
    // The URL is shown without what follows "://" user info (it may hold a password).
    const std::string shown = url.starts_with("postgres") ? "(PostgreSQL)" : url;
    if (g.json) {
      std::cout << Json{{"store", shown}, {"ok", problems->empty()}, {"problems", *problems}}.dump(
                       2)
                << "\n";
    } else if (problems->empty()) {
      std::cout << "store " << shown << ": integrity check ok\n";
    } else {
      std::cout << "store " << shown << " is corrupted (" << problems->size()
                << " problem(s) found):\n";
      for (const auto& p : *problems) std::cout << "  " << p << "\n";
      std::cout << store_restore_steps(url) << "\n";
    }
    if (!problems->empty()) throw CLI::RuntimeError(1);
  });

  // sqlite:PATH → postgres://… (a move to PostgreSQL), or postgres://… → a new sqlite:PATH
  // (a snapshot of a PostgreSQL store): every table, then counts and the audit chain
  // verified. Exit 0 copied and verified, 1 verification failed, 2 error (nothing copied).
  auto* copy = store->add_subcommand(
      "copy",
      "copy a SQLite store into an empty PostgreSQL database, or a PostgreSQL store into a new "
      "SQLite file, and verify the copy");
  copy->add_option("from", a->from, "sqlite:PATH or postgres://USER@HOST/DATABASE")->required();
  copy->add_option("to", a->to, "postgres://USER@HOST/DATABASE (empty) or sqlite:NEW-PATH")
      ->required();
  copy->add_option("--audit-key-file", a->audit_key_file,
                   "the server's audit key: also verify every entry's HMAC at the destination");
  copy->callback([a, &g] {
    const std::string key = a->audit_key_file.empty() ? "" : read_copy_audit_key(a->audit_key_file);
    auto r = copy_store(a->from, a->to);
    if (!r.ok()) fail(r.status().message(), r.status().code() == Code::kInternal ? 1 : 2);
    std::optional<AuditVerify> keyed;
    if (!key.empty()) keyed = verify_keyed(a->to, key);
    if (g.json) {
      Json out{{"ok", !keyed || keyed->ok},
               {"rows", r->rows},
               {"audit_entries", r->audit_entries},
               {"audit_head", std::to_string(r->audit_head_seq) + ":" + r->audit_head_hash}};
      if (keyed)
        out["audit_key"] = Json{{"ok", keyed->ok},
                                {"checked", keyed->checked},
                                {"bad_seq", keyed->bad_seq},
                                {"reason", keyed->reason}};
      std::cout << out.dump(2) << "\n";
    } else {
      for (const auto& [table, n] : r->rows) std::cout << "  " << table << ": " << n << "\n";
      std::cout << "copied and verified: row counts match, audit chain of " << r->audit_entries
                << " entries intact (head " << r->audit_head_seq << ":" << r->audit_head_hash
                << ")\n";
      if (keyed && keyed->ok)
        std::cout << "audit chain verified with the audit key: " << keyed->checked << " entries\n";
      else if (keyed)
        std::cout << "audit chain BROKEN at the destination, entry " << keyed->bad_seq << ": "
                  << keyed->reason << "\n";
    }
    if (keyed && !keyed->ok) throw CLI::RuntimeError(1);
  });
}

}  // namespace ferry::cli
