#include "ops/backup.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "governance/audit_chain.h"
#include "governance/secret_box.h"
#include "store/copy.h"
#include "store/store.h"
#include "store/store_url.h"

namespace fs = std::filesystem;

namespace ferry::ops {
namespace {

constexpr const char* kDbFile = "ferry.db";
constexpr const char* kConfigFile = "ferry.yaml";
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kSecretsKeyFile = "secrets.key";
constexpr const char* kAuditKeyFile = "audit.key";
constexpr int64_t kMaxManifestBytes = 1 << 20;
constexpr int kBackupBusyRetries = 3000;  // x 10 ms: the server holding a write lock

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool is_postgres(const std::string& url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

Result<std::string> sqlite_file(const std::string& url) {
  if (!url.starts_with("sqlite:"))
    return failed_precondition("store URL is neither sqlite:PATH nor postgres://…");
  std::string path = sqlite_file_of(url);
  if (path.empty()) return invalid_argument("store URL '" + url + "' names no file");
  return path;
}

std::string utc_stamp(const char* fmt) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

// SHA-256 of a file, read in pieces.
Result<std::pair<std::string, int64_t>> file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read " + path);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  int64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = in.gcount();
    if (n > 0) {
      EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
      total += n;
    }
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return std::make_pair(out, total);
}

// Copies a file to a new path (never over an existing one) with `mode`, fsynced.
Status copy_new_file(const std::string& from, const std::string& to, mode_t mode) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return not_found("cannot read " + from + ": " + std::strerror(errno));
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (out < 0) {
    ::close(in);
    return internal_error("cannot create " + to + ": " + std::strerror(errno));
  }
  char buf[1 << 15];
  bool ok = true;
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 || ::write(out, buf, static_cast<size_t>(n)) != n) {
      ok = false;
      break;
    }
  }
  ok = ok && ::fchmod(out, mode) == 0 && ::fsync(out) == 0;
  ::close(in);
  ::close(out);
  if (!ok) return internal_error("cannot copy " + from + " to " + to);
  return Status::Ok();
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

struct SqliteHandle {
  sqlite3* db = nullptr;
  ~SqliteHandle() {
    if (db) sqlite3_close_v2(db);
  }
};

Status sqlite_open(SqliteHandle& h, const std::string& path, int flags) {
  const int rc = sqlite3_open_v2(path.c_str(), &h.db, flags | SQLITE_OPEN_NOFOLLOW, nullptr);
  if (rc != SQLITE_OK)
    return unavailable("cannot open " + path + ": " +
                       (h.db ? sqlite3_errmsg(h.db) : sqlite3_errstr(rc)));
  sqlite3_busy_timeout(h.db, 5000);
  return Status::Ok();
}

Status sqlite_exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    return internal_error(msg);
  }
  return Status::Ok();
}

// Rows of each table, the schema version and the audit head of an SQLite file.
Status read_facts(sqlite3* db, BackupManifest& m) {
  std::vector<std::string> tables;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                         "'sqlite_%' ORDER BY name",
                         -1, &st, nullptr) != SQLITE_OK)
    return internal_error(std::string("cannot list tables: ") + sqlite3_errmsg(db));
  while (sqlite3_step(st) == SQLITE_ROW)
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  m.counts.clear();
  for (const std::string& t : tables) {
    // Names come from sqlite_master; quoted as identifiers all the same.
    std::string q = "\"";
    for (char c : t) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    q += "\"";
    const std::string sql = "SELECT count(*) FROM " + q;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      return internal_error("cannot count " + t + ": " + sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW) m.counts[t] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  if (m.counts.count("schema_migrations") &&
      sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st,
                         nullptr) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) m.schema_version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  m.audit_seq = 0;
  m.audit_hash.clear();
  if (m.counts.count("audit") &&
      sqlite3_prepare_v2(db, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &st,
                         nullptr) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) {
      m.audit_seq = sqlite3_column_int64(st, 0);
      m.audit_hash = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
    }
    sqlite3_finalize(st);
  }
  return Status::Ok();
}

// SQLite's online backup: pages are copied while the server keeps writing; a write in the
// middle restarts the copy, so the result is one consistent moment of the store.
Status online_copy(const std::string& from, const std::string& to) {
  SqliteHandle src, dst;
  FERRY_RETURN_IF_ERROR(sqlite_open(src, from, SQLITE_OPEN_READONLY));
  FERRY_RETURN_IF_ERROR(sqlite_open(dst, to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  sqlite3_backup* b = sqlite3_backup_init(dst.db, "main", src.db, "main");
  if (!b) return internal_error(std::string("backup of ") + from + ": " + sqlite3_errmsg(dst.db));
  int rc = SQLITE_OK;
  for (int i = 0; i < kBackupBusyRetries; ++i) {
    rc = sqlite3_backup_step(b, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE)
    return unavailable("backup of " + from + " did not finish: " + sqlite3_errstr(rc));
  // One self-contained file: no -wal beside it.
  return sqlite_exec(dst.db, "PRAGMA journal_mode = DELETE");
}

std::string keys_folder(const std::string& backup_dir, const BackupManifest& m,
                        const std::string& override_dir) {
  if (!override_dir.empty()) return override_dir;
  if (!m.keys_dir.empty()) return m.keys_dir;
  return (fs::path(backup_dir) / "keys").string();
}

Result<BackupManifest> read_manifest(const std::string& backup_dir) {
  const std::string path = (fs::path(backup_dir) / kManifestFile).string();
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return not_found("no backup at " + backup_dir + " (" + path + " is missing)");
  if (size > static_cast<uintmax_t>(kMaxManifestBytes))
    return invalid_argument(path + " is larger than 1 MiB: not a ferry backup manifest");
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto j = parse_json(text);
  if (!j.ok()) return invalid_argument(path + ": " + j.status().message());
  auto m = manifest_from_json(*j);
  if (!m.ok()) return m.status().with_context(path);
  return m;
}

// Where a manifest file lives: keys in the keys folder, the rest in the backup.
std::string file_path(const std::string& backup_dir, const std::string& keys_dir,
                      const std::string& name) {
  if (name.starts_with("keys/")) return (fs::path(keys_dir) / name.substr(5)).string();
  return (fs::path(backup_dir) / name).string();
}

bool safe_member_name(const std::string& name) {
  static const std::vector<std::string> allowed = {kDbFile, kConfigFile,
                                                   std::string("keys/") + kSecretsKeyFile,
                                                   std::string("keys/") + kAuditKeyFile};
  return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

// Checks a store file (a private copy: opening it migrates) against the manifest.
void check_store_copy(const std::string& db_path, const BackupManifest& m,
                      const std::string& keys_dir, VerifyReport& r) {
  {
    SqliteHandle h;
    if (Status s = sqlite_open(h, db_path, SQLITE_OPEN_READONLY); !s.ok()) {
      r.problems.push_back(s.message());
      return;
    }
    BackupManifest found;
    if (Status s = read_facts(h.db, found); !s.ok()) {
      r.problems.push_back(s.message());
      return;
    }
    r.counts = found.counts;
    for (const auto& [table, n] : m.counts) {
      auto it = found.counts.find(table);
      const int64_t have = it == found.counts.end() ? -1 : it->second;
      if (have != n)
        r.problems.push_back("table " + table + ": " + std::to_string(have) +
                             " rows, the manifest says " + std::to_string(n));
    }
    if (found.audit_seq != m.audit_seq || found.audit_hash != m.audit_hash)
      r.problems.push_back("audit head is " + std::to_string(found.audit_seq) + ":" +
                           found.audit_hash.substr(0, 12) + ", the manifest says " +
                           std::to_string(m.audit_seq) + ":" + m.audit_hash.substr(0, 12));
  }
  auto store = open_store("sqlite:" + db_path);
  if (!store.ok()) {
    r.problems.push_back("the store copy does not open: " + store.status().message());
    return;
  }
  // The audit chain, entry by entry, with the key.
  const std::string audit_key_file = (fs::path(keys_dir) / kAuditKeyFile).string();
  std::error_code ec;
  if (m.audit_seq > 0) {
    if (!fs::exists(audit_key_file, ec)) {
      r.problems.push_back("audit key " + audit_key_file +
                           " is missing: the audit chain cannot be verified");
    } else {
      bool created = false;
      auto key = load_or_create_audit_key(audit_key_file, &created);
      if (!key.ok()) {
        r.problems.push_back("audit key: " + key.status().message());
        return;
      }
      KeyedAuditVerifier v(*key);
      int64_t after = 0;
      for (;;) {
        auto page = (*store)->list_audit(after, 1000);
        if (!page.ok()) {
          r.problems.push_back("audit: " + page.status().message());
          break;
        }
        if (page->empty()) break;
        for (const AuditRecord& a : *page) {
          ++r.audit_entries;
          v.add(a);
          after = a.seq;
        }
        if (!v.result().ok) break;
      }
      const AuditVerify& res = v.finish();
      if (!res.ok)
        r.problems.push_back("audit chain broken at entry " + std::to_string(res.bad_seq) + ": " +
                             res.reason);
    }
  }
  // Every secret opens with the secrets key.
  if (m.counts.count("secrets") && m.counts.at("secrets") > 0) {
    const std::string key_file = (fs::path(keys_dir) / kSecretsKeyFile).string();
    auto box = SecretBox::from_key_file(key_file);
    if (!box.ok()) {
      r.problems.push_back("secrets key: " + box.status().message());
      return;
    }
    SqliteHandle h;
    if (!sqlite_open(h, db_path, SQLITE_OPEN_READONLY).ok()) return;
    sqlite3_stmt* st = nullptr;
    std::vector<std::pair<std::string, std::string>> scopes;
    if (sqlite3_prepare_v2(h.db, "SELECT DISTINCT app, env FROM secrets", -1, &st, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW)
        scopes.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)),
                            reinterpret_cast<const char*>(sqlite3_column_text(st, 1)));
      sqlite3_finalize(st);
    }
    for (const auto& [app, env] : scopes) {
      auto list = (*store)->list_secrets(app, env);
      if (!list.ok()) {
        r.problems.push_back("secrets of " + app + "/" + env + ": " + list.status().message());
        continue;
      }
      for (const SecretRecord& s : *list) {
        auto plain = open_secret(*box, s);
        if (plain.ok())
          ++r.secrets_opened;
        else
          r.problems.push_back(plain.status().message() + " (wrong secrets key?)");
      }
    }
  }
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ferry-drill-XXXXXX").string();
    if (::mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

Json manifest_to_json(const BackupManifest& m) {
  Json files = Json::array();
  for (const BackupFile& f : m.files)
    files.push_back(Json{{"name", f.name}, {"sha256", f.sha256}, {"bytes", f.bytes}});
  Json j{{"format", m.format},
         {"created_at", m.created_at},
         {"ferry_version", m.ferry_version},
         {"store", m.store_kind},
         {"schema_version", m.schema_version},
         {"counts", m.counts},
         {"audit_head", Json{{"seq", m.audit_seq}, {"hash", m.audit_hash}}},
         {"files", files}};
  if (!m.keys_dir.empty()) j["keys_dir"] = m.keys_dir;
  return j;
}

Result<BackupManifest> manifest_from_json(const Json& j) {
  BackupManifest m;
  try {
    if (!j.is_object()) return invalid_argument("manifest is not a JSON object");
    m.format = j.value("format", 0);
    if (m.format != 1)
      return invalid_argument("manifest format " + std::to_string(m.format) +
                              " is not one this ferry reads (1)");
    m.created_at = j.value("created_at", "");
    m.ferry_version = j.value("ferry_version", "");
    m.store_kind = j.value("store", "");
    m.schema_version = j.value("schema_version", 0);
    for (const auto& [k, v] : j.at("counts").items()) m.counts[k] = v.get<int64_t>();
    m.audit_seq = j.at("audit_head").value("seq", int64_t{0});
    m.audit_hash = j.at("audit_head").value("hash", "");
    m.keys_dir = j.value("keys_dir", "");
    for (const auto& f : j.at("files")) {
      BackupFile bf{f.at("name").get<std::string>(), f.at("sha256").get<std::string>(),
                    f.value("bytes", int64_t{0})};
      if (!safe_member_name(bf.name))
        return invalid_argument("manifest names an unexpected file '" + bf.name + "'");
      m.files.push_back(std::move(bf));
    }
  } catch (const std::exception& e) {
    return invalid_argument(std::string("manifest is malformed: ") + e.what());
  }
  return m;
}

std::string backups_dir(const ServerSpec& server) {
  if (!server.backups.dir.empty()) return server.backups.dir;
  return (fs::path(server.data_dir) / "backups").string();
}

std::string secrets_key_path(const ServerSpec& server) {
  return server.secrets_key_file.empty() ? server.data_dir + "/" + kSecretsKeyFile
                                         : server.secrets_key_file;
}

std::string audit_key_path(const ServerSpec& server) {
  return server.audit_key_file.empty() ? server.data_dir + "/" + kAuditKeyFile
                                       : server.audit_key_file;
}

bool server_holds(const ServerSpec& server) {
  const std::string lock = (fs::path(server.data_dir) / "server.lock").string();
  const int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // closing drops a lock we may just have taken
  return held;
}

Result<BackupResult> create_backup(const ServerSpec& server, const BackupOptions& options) {
  const auto t0 = Clock::now();
  const bool pg = is_postgres(server.store);
  std::error_code ec;
  std::string db;
  if (!pg) {
    auto file = sqlite_file(server.store);
    if (!file.ok()) return file.status();
    db = *file;
    if (!fs::is_regular_file(db, ec))
      return not_found("store file " + db + " does not exist (server.store: " + server.store + ")");
  }
  const std::string target = options.to_dir.empty() ? backups_dir(server) : options.to_dir;
  fs::create_directories(target, ec);
  if (ec) return internal_error("cannot create backup folder " + target + ": " + ec.message());
  std::string name = std::string(kBackupPrefix) + utc_stamp("%Y%m%dT%H%M%SZ");
  for (int i = 2; fs::exists(fs::path(target) / name, ec); ++i)
    name = std::string(kBackupPrefix) + utc_stamp("%Y%m%dT%H%M%SZ") + "-" + std::to_string(i);
  // Built under a hidden name and renamed at the end: a half-made backup never looks whole.
  const std::string partial = (fs::path(target) / (".partial-" + name)).string();
  const std::string final_dir = (fs::path(target) / name).string();
  fs::remove_all(partial, ec);
  if (::mkdir(partial.c_str(), 0700) != 0)
    return internal_error("cannot create " + partial + ": " + std::strerror(errno));
  auto fail = [&](Status s) {
    fs::remove_all(partial, ec);
    return s;
  };

  BackupManifest m;
  m.created_at = utc_stamp("%Y-%m-%dT%H:%M:%SZ");
  m.ferry_version = options.ferry_version.empty() ? FERRY_OPS_VERSION : options.ferry_version;
  m.store_kind = pg ? "postgres" : "sqlite";
  const std::string db_copy = (fs::path(partial) / kDbFile).string();
  if (pg) {
    // A PostgreSQL store is copied, from one snapshot, into the same SQLite file a SQLite
    // store's backup holds: verify, drill and restore read it alike.
    auto copied = copy_store(server.store, "sqlite:" + db_copy);
    if (!copied.ok()) return fail(copied.status().with_context("copying the PostgreSQL store"));
    SqliteHandle h;
    if (Status s = sqlite_open(h, db_copy, SQLITE_OPEN_READWRITE); !s.ok()) return fail(s);
    if (Status s = sqlite_exec(h.db, "PRAGMA journal_mode = DELETE"); !s.ok()) return fail(s);
  } else if (Status s = online_copy(db, db_copy); !s.ok()) {
    return fail(s);
  }
  ::chmod(db_copy.c_str(), 0600);
  {
    SqliteHandle h;
    if (Status s = sqlite_open(h, db_copy, SQLITE_OPEN_READONLY); !s.ok()) return fail(s);
    if (Status s = read_facts(h.db, m); !s.ok()) return fail(s);
  }
  std::vector<std::string> members = {kDbFile};
  if (!options.config_path.empty()) {
    if (Status s =
            copy_new_file(options.config_path, (fs::path(partial) / kConfigFile).string(), 0600);
        !s.ok())
      return fail(s);
    members.push_back(kConfigFile);
  }
  std::string keys_dir = (fs::path(partial) / "keys").string();
  if (!options.keys_to.empty()) {
    keys_dir = (fs::path(options.keys_to) / name).string();
    m.keys_dir = fs::absolute(keys_dir, ec).string();
    fs::create_directories(options.keys_to, ec);
  }
  if (::mkdir(keys_dir.c_str(), 0700) != 0)
    return fail(internal_error("cannot create " + keys_dir + ": " + std::strerror(errno)));
  for (const auto& [from, file] : {std::pair{secrets_key_path(server), kSecretsKeyFile},
                                   std::pair{audit_key_path(server), kAuditKeyFile}}) {
    if (!fs::exists(from, ec)) continue;  // no secrets yet, or no audit key yet
    if (Status s = copy_new_file(from, (fs::path(keys_dir) / file).string(), 0600); !s.ok())
      return fail(s);
    members.push_back(std::string("keys/") + file);
  }
  for (const std::string& member : members) {
    auto sum = file_sha256(file_path(partial, keys_dir, member));
    if (!sum.ok()) return fail(sum.status());
    m.files.push_back(BackupFile{member, sum->first, sum->second});
  }
  {
    const std::string mpath = (fs::path(partial) / kManifestFile).string();
    const int fd = ::open(mpath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail(internal_error("cannot create " + mpath));
    const std::string text = manifest_to_json(m).dump(2) + "\n";
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return fail(internal_error("cannot write " + mpath));
  }
  fsync_dir(partial);
  fsync_dir(keys_dir);
  if (!options.keys_to.empty()) {
    // The keys live apart; nothing of them stays in the backup folder.
    fs::remove(fs::path(partial) / "keys", ec);
  }
  fs::rename(partial, final_dir, ec);
  if (ec) return fail(internal_error("cannot rename " + partial + ": " + ec.message()));
  fsync_dir(target);
  return BackupResult{final_dir, std::move(m), seconds_since(t0)};
}

VerifyReport verify_backup(const std::string& backup_dir, const std::string& keys_override) {
  const auto t0 = Clock::now();
  VerifyReport r;
  auto m = read_manifest(backup_dir);
  if (!m.ok()) {
    r.problems.push_back(m.status().message());
    r.seconds = seconds_since(t0);
    return r;
  }
  const std::string keys_dir = keys_folder(backup_dir, *m, keys_override);
  bool have_db = false;
  for (const BackupFile& f : m->files) {
    const std::string path = file_path(backup_dir, keys_dir, f.name);
    auto sum = file_sha256(path);
    if (!sum.ok()) {
      r.problems.push_back(f.name + ": " + sum.status().message());
    } else if (sum->first != f.sha256 || sum->second != f.bytes) {
      r.problems.push_back(f.name + ": checksum does not match the manifest (changed or damaged)");
    } else if (f.name == kDbFile) {
      have_db = true;
    }
  }
  if (have_db) {
    // Opening a store migrates it: the checks run on a private copy.
    TempDir tmp;
    const std::string copy = (fs::path(tmp.path) / kDbFile).string();
    if (tmp.path.empty()) {
      r.problems.push_back("cannot make a temporary folder");
    } else if (Status s = copy_new_file((fs::path(backup_dir) / kDbFile).string(), copy, 0600);
               !s.ok()) {
      r.problems.push_back(s.message());
    } else {
      check_store_copy(copy, *m, keys_dir, r);
    }
  } else if (std::none_of(m->files.begin(), m->files.end(),
                          [](const BackupFile& f) { return f.name == kDbFile; })) {
    r.problems.push_back("the manifest lists no store file");
  }
  r.ok = r.problems.empty();
  r.seconds = seconds_since(t0);
  return r;
}

namespace {

// A backup that verifies, with its manifest; else why not (nothing is changed).
Result<std::pair<VerifyReport, BackupManifest>> verified(const std::string& backup_dir,
                                                         const std::string& keys_override) {
  VerifyReport report = verify_backup(backup_dir, keys_override);
  if (!report.ok) {
    std::string msg = "backup " + backup_dir + " does not verify; nothing was changed:";
    for (const auto& p : report.problems) msg += "\n  " + p;
    return failed_precondition(msg);
  }
  auto m = read_manifest(backup_dir);
  if (!m.ok()) return m.status();
  return std::make_pair(std::move(report), std::move(*m));
}

// Copies `from` to `to` through `to`.restoring; what was at `to` is kept as `to`+suffix.
Status put_in_place(const std::string& from, const std::string& to, const std::string& suffix) {
  std::error_code ec;
  fs::create_directories(fs::path(to).parent_path().empty() ? "." : fs::path(to).parent_path(), ec);
  const std::string tmp = to + ".restoring";
  fs::remove(tmp, ec);
  FERRY_RETURN_IF_ERROR(copy_new_file(from, tmp, 0600));
  if (fs::exists(to, ec)) {
    fs::rename(to, to + suffix, ec);
    if (ec) return internal_error("cannot move " + to + " aside: " + ec.message());
  }
  fs::rename(tmp, to, ec);
  if (ec) return internal_error("cannot put " + to + " in place: " + ec.message());
  return Status::Ok();
}

// The backup's secrets and audit keys where `server` reads them (a key already there and
// equal is left alone).
Status restore_keys(const ServerSpec& server, const std::string& keys_dir,
                    const std::string& suffix) {
  std::error_code ec;
  for (const auto& [file, to] : {std::pair{kSecretsKeyFile, secrets_key_path(server)},
                                 std::pair{kAuditKeyFile, audit_key_path(server)}}) {
    const std::string from = (fs::path(keys_dir) / file).string();
    if (!fs::exists(from, ec)) continue;
    if (fs::exists(to, ec) && read_small_file(to) == read_small_file(from)) continue;
    FERRY_RETURN_IF_ERROR(put_in_place(from, to, suffix));
  }
  return Status::Ok();
}

// Into PostgreSQL: the backup's rows go into an empty database (a new one, `createdb`)
// through the verified copy of `ferry store copy`; a database that holds data is refused
// with nothing changed, which also keeps a restore away from a store servers still use.
Result<VerifyReport> restore_into_postgres(const ServerSpec& server, const std::string& backup_dir,
                                           const RestoreOptions& options) {
  auto v = verified(backup_dir, options.keys_dir);
  if (!v.ok()) return v.status();
  TempDir tmp;  // opening a store migrates it: the copy reads a private copy of the file
  if (tmp.path.empty()) return internal_error("cannot make a temporary folder");
  const std::string copy = (fs::path(tmp.path) / kDbFile).string();
  FERRY_RETURN_IF_ERROR(copy_new_file((fs::path(backup_dir) / kDbFile).string(), copy, 0600));
  auto copied = copy_store("sqlite:" + copy, server.store);
  if (!copied.ok()) return copied.status().with_context("restoring into PostgreSQL");
  FERRY_RETURN_IF_ERROR(restore_keys(server, keys_folder(backup_dir, v->second, options.keys_dir),
                                     ".before-restore-" + utc_stamp("%Y%m%dT%H%M%SZ")));
  return v->first;
}

}  // namespace

Result<VerifyReport> restore_backup(const ServerSpec& server, const std::string& backup_dir,
                                    const RestoreOptions& options) {
  if (is_postgres(server.store)) return restore_into_postgres(server, backup_dir, options);
  auto db = sqlite_file(server.store);
  if (!db.ok()) return db.status();
  if (server_holds(server))
    return failed_precondition("a ferry server is running on " + server.data_dir +
                               " (it holds server.lock): stop it before restoring");
  auto v = verified(backup_dir, options.keys_dir);
  if (!v.ok()) return v.status();
  const std::string keys_dir = keys_folder(backup_dir, v->second, options.keys_dir);
  const std::string suffix = ".before-restore-" + utc_stamp("%Y%m%dT%H%M%SZ");
  std::error_code ec;
  // The store's -wal and -shm belong to the file being replaced.
  for (const char* side : {"-wal", "-shm"}) {
    if (fs::exists(*db + side, ec)) fs::rename(*db + side, *db + side + suffix, ec);
  }
  FERRY_RETURN_IF_ERROR(put_in_place((fs::path(backup_dir) / kDbFile).string(), *db, suffix));
  FERRY_RETURN_IF_ERROR(restore_keys(server, keys_dir, suffix));
  return v->first;
}

Result<DrillReport> drill_backup(const std::string& dir, const std::string& keys_dir) {
  const auto backups = list_backups(dir);
  if (backups.empty()) return not_found("no backup in " + dir + " to drill");
  DrillReport d;
  d.backup = backups.front();
  const auto t0 = Clock::now();
  // A restore into a fresh place: copy, open (migrate), verify.
  ServerSpec scratch;
  TempDir tmp;
  if (tmp.path.empty()) return internal_error("cannot make a temporary folder");
  scratch.data_dir = tmp.path;
  scratch.store = "sqlite:" + (fs::path(tmp.path) / kDbFile).string();
  auto restored = restore_backup(scratch, d.backup, RestoreOptions{keys_dir});
  d.restore_seconds = seconds_since(t0);
  if (restored.ok()) {
    d.verify = *restored;
  } else {
    d.verify.ok = false;
    d.verify.problems.push_back(restored.status().message());
  }
  return d;
}

std::vector<std::string> list_backups(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(kBackupPrefix) && e.is_directory(ec) && !e.is_symlink(ec))
      out.push_back(e.path().string());
  }
  // The names carry the UTC time: newest last in name order.
  std::sort(out.begin(), out.end(), std::greater<>());
  return out;
}

int prune_backups(const std::string& dir, int keep) {
  int removed = 0;
  std::error_code ec;
  // Leftovers of a backup that never finished go first.
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().starts_with(".partial-")) fs::remove_all(e.path(), ec);
  }
  const auto all = list_backups(dir);
  for (size_t i = static_cast<size_t>(std::max(keep, 1)); i < all.size(); ++i) {
    if (fs::remove_all(all[i], ec) > 0) ++removed;
  }
  return removed;
}

}  // namespace ferry::ops
