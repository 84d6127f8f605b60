// `ferry backup create|list|verify|restore|drill`: copies of the store with their keys and a
// manifest, and the drills that show a copy really restores (docs/operations.md).
#include <fmt/format.h>

#include <iostream>

#include "cli/client.h"
#include "config/loader.h"
#include "ops/backup.h"

namespace ferry::cli {
namespace {

struct BackupArgs {
  std::string config_path = "ferry.yaml";
  std::string to;
  std::string keys_to;
  std::string keys;
  std::string dir;
  std::string backup;
};

Config load_or_fail(const std::string& path) {
  auto cfg = load_config(path);
  if (!cfg.ok()) fail(cfg.status().message());
  return std::move(*cfg);
}

Json verify_json(const ops::VerifyReport& r) {
  return Json{{"ok", r.ok},
              {"problems", r.problems},
              {"counts", r.counts},
              {"audit_entries", r.audit_entries},
              {"secrets_opened", r.secrets_opened},
              {"seconds", r.seconds}};
}

void print_verify(const ops::VerifyReport& r) {
  std::cout << (r.ok ? "verified" : "NOT verified") << ": " << r.audit_entries
            << " audit entries in an unbroken chain, " << r.secrets_opened << " secrets decrypted, "
            << r.counts.size() << " tables counted\n";
  for (const auto& p : r.problems) std::cout << "  problem: " << p << "\n";
}

}  // namespace

void register_backup_commands(CLI::App& app, GlobalOptions& g) {
  auto a = std::make_shared<BackupArgs>();
  auto* backup = app.add_subcommand("backup", "backups of the store, with restore drills");
  backup->require_subcommand(1);
  backup->add_option("--config,-c", a->config_path, "ferry.yaml")->capture_default_str();

  auto* create = backup->add_subcommand("create", "copy the store (online), keys and config");
  create->add_option("--to", a->to, "folder to put the backup in (default: server.backups.dir)");
  create->add_option("--keys-to", a->keys_to,
                     "keep the keys in this folder instead of inside the backup");
  create->callback([a, &g] {
    Config cfg = load_or_fail(a->config_path);
    ops::BackupOptions o;
    o.to_dir = a->to;
    o.keys_to = a->keys_to;
    o.config_path = a->config_path;
    o.ferry_version = FERRY_VERSION;
    auto r = ops::create_backup(cfg.server, o);
    if (!r.ok()) fail(r.status().message(), 1);
    if (g.json) {
      std::cout << Json{{"dir", r->dir},
                        {"manifest", ops::manifest_to_json(r->manifest)},
                        {"seconds", r->seconds}}
                       .dump(2)
                << "\n";
      return;
    }
    int64_t rows = 0;
    for (const auto& [t, n] : r->manifest.counts) rows += n;
    std::cout << fmt::format("backup {} ({} rows, audit head {}, {:.2f} s)\n", r->dir, rows,
                             r->manifest.audit_seq, r->seconds);
    if (!a->keys_to.empty())
      std::cout << "keys kept apart in " << r->manifest.keys_dir << " (mode 0600)\n";
  });

  auto* list = backup->add_subcommand("list", "backups, newest first");
  list->add_option("--dir", a->dir, "folder of backups (default: server.backups.dir)");
  list->callback([a, &g] {
    std::string dir = a->dir;
    if (dir.empty()) dir = ops::backups_dir(load_or_fail(a->config_path).server);
    Json out = Json::array();
    for (const auto& b : ops::list_backups(dir)) {
      if (g.json)
        out.push_back(b);
      else
        std::cout << b << "\n";
    }
    if (g.json) std::cout << out.dump(2) << "\n";
  });

  auto* verify =
      backup->add_subcommand("verify", "check a backup's checksums, counts, chain, keys");
  verify->add_option("BACKUP", a->backup, "backup folder")->required();
  verify->add_option("--keys", a->keys, "folder with the backup's keys (if kept apart)");
  verify->callback([a, &g] {
    auto r = ops::verify_backup(a->backup, a->keys);
    if (g.json)
      std::cout << verify_json(r).dump(2) << "\n";
    else
      print_verify(r);
    if (!r.ok) throw CLI::RuntimeError(1);
  });

  auto* restore = backup->add_subcommand(
      "restore", "put a verified backup in place of the store and keys (server stopped)");
  restore->add_option("BACKUP", a->backup, "backup folder")->required();
  restore->add_option("--keys", a->keys, "folder with the backup's keys (if kept apart)");
  restore->callback([a, &g] {
    Config cfg = load_or_fail(a->config_path);
    auto r = ops::restore_backup(cfg.server, a->backup, ops::RestoreOptions{a->keys});
    if (!r.ok()) fail(r.status().message(), 1);
    if (g.json) {
      std::cout << verify_json(*r).dump(2) << "\n";
      return;
    }
    print_verify(*r);
    std::cout << "restored " << a->backup << " into " << cfg.server.store
              << "; the replaced files were kept as *.before-restore-*\n";
  });

  auto* drill = backup->add_subcommand(
      "drill", "restore the newest backup into a temporary store and verify it");
  drill->add_option("--dir", a->dir, "folder of backups (default: server.backups.dir)");
  drill->add_option("--keys", a->keys, "folder with the backup's keys (if kept apart)");
  drill->callback([a, &g] {
    std::string dir = a->dir;
    if (dir.empty()) dir = ops::backups_dir(load_or_fail(a->config_path).server);
    auto d = ops::drill_backup(dir, a->keys);
    if (!d.ok()) fail(d.status().message(), 1);
    if (g.json) {
      std::cout << Json{{"backup", d->backup},
                        {"restore_seconds", d->restore_seconds},
                        {"verify", verify_json(d->verify)}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << fmt::format("drill of {}: restored and checked in {:.2f} s\n", d->backup,
                               d->restore_seconds);
      print_verify(d->verify);
    }
    if (!d->verify.ok) throw CLI::RuntimeError(1);
  });
}

}  // namespace ferry::cli
