// Agent enrollment (server/enrollment.h): the CA in the data dir, one-time join tokens,
// certificates named by the CA, revocation — and an attacker's tries: a used token, an
// expired one, a token of another agent, a guessed one.
#include "server/enrollment.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry {
namespace {

namespace fs = std::filesystem;

class EnrollmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ferry-enroll-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto e = Enrollment::open((dir_ / "tls").string(), clock_);
    ASSERT_TRUE(e.ok()) << e.status().message();
    e_ = std::move(*e);
    key_ = make_private_key().value();
    csr_ = make_csr(key_, "anything").value();
  }
  void TearDown() override { fs::remove_all(dir_); }
  static int mode(const fs::path& p) {
    struct stat st {};
    stat(p.c_str(), &st);
    return st.st_mode & 0777;
  }

  FakeClock clock_;
  fs::path dir_;
  std::unique_ptr<Enrollment> e_;
  std::string key_, csr_;
};

TEST_F(EnrollmentTest, TheCaAndTheServerKeyArePrivateAndKeptAcrossOpens) {
  EXPECT_EQ(mode(dir_ / "tls"), 0700);
  for (const char* f : {"ca.key", "ca.crt", "server.key", "server.crt"})
    EXPECT_EQ(mode(dir_ / "tls" / f), 0600) << f;
  const std::string ca = e_->ca_pem();
  auto again = Enrollment::open((dir_ / "tls").string(), clock_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->ca_pem(), ca);
  EXPECT_EQ(cert_common_name(e_->server_identity().cert_pem).value(), "ferry-server");
  // A CA key others can read is refused, not used.
  fs::permissions(dir_ / "tls/ca.key", fs::perms::group_read, fs::perm_options::add);
  auto loose = Enrollment::open((dir_ / "tls").string(), clock_);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos);
}

TEST_F(EnrollmentTest, ATokenJoinsItsAgentOnceWithACertificateOfItsName) {
  auto token = e_->issue_token("box-1", 3'600'000);
  ASSERT_TRUE(token.ok()) << token.status().message();
  // Only the token's hash is stored.
  std::ifstream f(dir_ / "tls/enroll.json");
  std::string stored((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(stored.find(*token), std::string::npos);
  auto cert = e_->redeem("box-1", *token, csr_);
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_EQ(cert_common_name(*cert).value(), "box-1");  // the CSR asked for "anything"
  // The certificate works: a server context with it accepts the server's identity.
  EXPECT_TRUE(
      TlsContext::create(TlsContext::Role::kServer, TlsIdentity{*cert, key_, e_->ca_pem(), {}})
          .ok());
  // Used: the same token again is refused, with the message a guesser gets too.
  auto twice = e_->redeem("box-1", *token, csr_);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), Code::kUnauthenticated);
  auto guessed = e_->redeem("box-1", "fj_0000", csr_);
  EXPECT_EQ(guessed.status().message(), twice.status().message());
}

TEST_F(EnrollmentTest, AnExpiredTokenAnotherAgentsTokenAndAReplacedTokenAreRefused) {
  auto t1 = e_->issue_token("box-1", 60'000);
  ASSERT_TRUE(t1.ok());
  // Another agent's name with box-1's token.
  ASSERT_TRUE(e_->issue_token("box-2", 60'000).ok());
  EXPECT_EQ(e_->redeem("box-2", *t1, csr_).status().code(), Code::kUnauthenticated);
  // Expired.
  clock_.advance(std::chrono::seconds(61));
  EXPECT_EQ(e_->redeem("box-1", *t1, csr_).status().code(), Code::kUnauthenticated);
  // A new token replaces the old one.
  auto t2 = e_->issue_token("box-1", 60'000);
  auto t3 = e_->issue_token("box-1", 60'000);
  ASSERT_TRUE(t2.ok() && t3.ok());
  EXPECT_FALSE(e_->redeem("box-1", *t2, csr_).ok());
  EXPECT_TRUE(e_->redeem("box-1", *t3, csr_).ok());
}

TEST_F(EnrollmentTest, BadInputIsRefusedNamingTheValue) {
  EXPECT_EQ(e_->issue_token("../etc", 60'000).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(e_->issue_token("box-1", 1000).status().code(), Code::kInvalidArgument);
  auto t = e_->issue_token("box-1", 60'000);
  ASSERT_TRUE(t.ok());
  // A CSR that is not one spends the token (one try per token) and says why.
  auto bad = e_->redeem("box-1", *t, "-----BEGIN CERTIFICATE REQUEST-----\nxx\n");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(e_->redeem("box-1", *t, csr_).status().code(), Code::kUnauthenticated);
}

TEST_F(EnrollmentTest, RevokingAnAgentPutsItsSerialsInTheServersRevokedList) {
  auto t = e_->issue_token("box-1", 60'000);
  auto cert = e_->redeem("box-1", *t, csr_);
  ASSERT_TRUE(cert.ok());
  // The server's contexts read the list from this file on every handshake.
  const std::string list = e_->server_identity().revoked_path;
  ASSERT_FALSE(list.empty());
  auto listed = [&] {
    std::ifstream f(list);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  EXPECT_EQ(listed().find(cert_serial(*cert).value()), std::string::npos);
  auto serials = e_->revoke("box-1");
  ASSERT_TRUE(serials.ok());
  ASSERT_EQ(serials->size(), 1u);
  EXPECT_EQ((*serials)[0], cert_serial(*cert).value());
  EXPECT_NE(listed().find((*serials)[0] + "\n"), std::string::npos) << listed();
  EXPECT_EQ(e_->revoke("box-9").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace ferry
