#include "governance/secret_box.h"

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/crypto.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

class SecretBoxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / random_id("ferry-secretbox-");
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_file(const std::string& name, std::string_view content, mode_t mode) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }
  static SecretBox box_with(std::string key) {
    auto b = SecretBox::from_key(key);
    EXPECT_TRUE(b.ok());
    return std::move(*b);
  }

  fs::path dir_;
};

TEST_F(SecretBoxTest, RoundTrips) {
  SecretBox box = box_with(random_bytes(32));
  for (const std::string& plain : {std::string(), std::string("postgres://u:hunter2@db/app"),
                                   std::string("\0\x01\xff binary", 10), std::string(SecretBox::kMaxPlaintext, 'x')}) {
    auto blob = box.seal(plain, "aad");
    ASSERT_TRUE(blob.ok()) << blob.status().to_string();
    EXPECT_EQ(blob->size(), plain.size() + SecretBox::kOverhead);
    EXPECT_EQ(static_cast<uint8_t>((*blob)[0]), SecretBox::kVersion);
    auto back = box.open(*blob, "aad");
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(*back, plain);
  }
  // A fresh nonce each time: the same plaintext never gives the same blob.
  EXPECT_NE(*box.seal("same", ""), *box.seal("same", ""));
  EXPECT_EQ(box.seal(std::string(SecretBox::kMaxPlaintext + 1, 'x'), "").status().code(), Code::kResourceExhausted);
}

TEST_F(SecretBoxTest, DetectsEveryAlteredByte) {
  SecretBox box = box_with(random_bytes(32));
  const std::string secret = "s3cr3t-value-do-not-print";
  const std::string blob = *box.seal(secret, "web/prod/DB");
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto r = box.open(bad, "web/prod/DB");
    ASSERT_FALSE(r.ok()) << "byte " << i;
    ASSERT_EQ(r.status().message().find(secret), std::string::npos);
  }
  EXPECT_FALSE(box.open(blob.substr(0, blob.size() - 1), "web/prod/DB").ok());
  EXPECT_FALSE(box.open(blob + "x", "web/prod/DB").ok());
  EXPECT_FALSE(box.open("", "web/prod/DB").ok());
  std::string v2 = blob;
  v2[0] = 2;
  EXPECT_NE(box.open(v2, "web/prod/DB").status().message().find("version 2"), std::string::npos);
}

TEST_F(SecretBoxTest, WrongAssociatedDataOrKeyFails) {
  SecretBox box = box_with(random_bytes(32));
  const std::string blob = *box.seal("value", "web/prod/DB");
  EXPECT_FALSE(box.open(blob, "web/prod/DB2").ok());
  EXPECT_FALSE(box.open(blob, "").ok());
  SecretBox other = box_with(random_bytes(32));
  auto r = other.open(blob, "web/prod/DB");
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wrong key"), std::string::npos);
}

TEST_F(SecretBoxTest, RecordsCannotMoveBetweenSecrets) {
  SecretBox box = box_with(random_bytes(32));
  SecretRecord r{"web", "production", "DATABASE_URL", "", 0, "alice"};
  ASSERT_TRUE(seal_secret(box, r, "postgres://x").ok());
  EXPECT_EQ(*open_secret(box, r), "postgres://x");
  for (auto moved : {SecretRecord{"api", "production", "DATABASE_URL", r.ciphertext, 0, ""},
                     SecretRecord{"web", "staging", "DATABASE_URL", r.ciphertext, 0, ""},
                     SecretRecord{"web", "production", "OTHER", r.ciphertext, 0, ""}}) {
    auto o = open_secret(box, moved);
    EXPECT_FALSE(o.ok());
    EXPECT_EQ(o.status().message().find("postgres"), std::string::npos);
  }
  EXPECT_NE(secret_aad("a", "bc", "d"), secret_aad("ab", "c", "d"));
  SecretRecord garbage = r;
  garbage.ciphertext = "zz";
  EXPECT_FALSE(open_secret(box, garbage).ok());
}

TEST_F(SecretBoxTest, KeyFilesRawAndHex) {
  const std::string key = random_bytes(32);
  const std::string raw = write_file("raw.key", key, 0600);
  const std::string hex = write_file("hex.key", to_hex(key) + "\n", 0400);
  auto a = SecretBox::from_key_file(raw);
  auto b = SecretBox::from_key_file(hex);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(*b->open(*a->seal("x", "y"), "y"), "x");  // same key either way

  for (const std::string& bad : {std::string(31, 'k'), std::string(33, 'k'), std::string(64, 'g'), std::string()}) {
    auto r = SecretBox::from_key_file(write_file("bad.key", bad, 0600));
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("32 raw bytes or 64 hex characters"), std::string::npos);
  }
  EXPECT_EQ(SecretBox::from_key_file((dir_ / "missing.key").string()).status().code(), Code::kNotFound);
  EXPECT_EQ(SecretBox::from_key_file(dir_.string()).status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(SecretBox::from_key(std::string(16, 'k')).ok());
}

TEST_F(SecretBoxTest, RefusesKeyFilesOthersCanRead) {
  const std::string key = to_hex(random_bytes(32));
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602}) {
    const std::string path = write_file("open.key", key, mode);
    auto r = SecretBox::from_key_file(path);
    ASSERT_EQ(r.status().code(), Code::kFailedPrecondition) << std::oct << mode;
    EXPECT_NE(r.status().message().find("chmod 600 " + path), std::string::npos);
    EXPECT_NE(r.status().message().find(fmt::format("{:04o}", mode)), std::string::npos);
    EXPECT_EQ(r.status().message().find(key), std::string::npos);
  }
}

TEST_F(SecretBoxTest, CreatesPrivateKeyFilesAndNeverOverwrites) {
  const std::string path = (dir_ / "new.key").string();
  const mode_t old_umask = ::umask(0);  // even a permissive umask gives 0600
  const Status s = SecretBox::create_key_file(path);
  ::umask(old_umask);
  ASSERT_TRUE(s.ok()) << s.to_string();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 65);
  auto box = SecretBox::from_key_file(path);
  ASSERT_TRUE(box.ok()) << box.status().to_string();

  std::ifstream in(path);
  const std::string before((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(SecretBox::create_key_file(path).code(), Code::kAlreadyExists);
  std::ifstream again(path);
  const std::string after((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(before, after);
  // A dangling symlink is not followed.
  const fs::path link = dir_ / "link.key";
  fs::create_symlink(dir_ / "target.key", link);
  EXPECT_EQ(SecretBox::create_key_file(link.string()).code(), Code::kAlreadyExists);
  EXPECT_FALSE(fs::exists(dir_ / "target.key"));
  // Two keys differ.
  ASSERT_TRUE(SecretBox::create_key_file((dir_ / "second.key").string()).ok());
  EXPECT_FALSE(SecretBox::from_key_file((dir_ / "second.key").string())->open(*box->seal("x", ""), "").ok());
}

}  // namespace
}  // namespace ferry
