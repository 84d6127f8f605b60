#include "governance/roles.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/crypto.h"
#include "governance/tokens.h"

namespace ferry {
namespace {

constexpr int64_t kRolesNow = 1'800'000'000'000;

TEST(Roles, ParseAndNameRoundTrip) {
  for (Role r : {Role::kViewer, Role::kDeployer, Role::kApprover, Role::kAdmin}) {
    auto parsed = parse_role(role_name(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  for (const char* bad : {"", "Admin", "root", "admin "}) {
    auto p = parse_role(bad);
    EXPECT_EQ(p.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(p.status().message().find("viewer, deployer, approver or admin"), std::string::npos);
  }
}

TEST(Roles, HigherRolesIncludeLowerOnes) {
  const Role order[] = {Role::kViewer, Role::kDeployer, Role::kApprover, Role::kAdmin};
  for (int have = 0; have < 4; ++have)
    for (int need = 0; need < 4; ++need)
      EXPECT_EQ(allows(order[have], order[need]), have >= need) << have << " " << need;
}

TEST(Roles, EnvironmentScope) {
  EXPECT_TRUE(scope_allows({}, "production"));
  EXPECT_TRUE(scope_allows({"staging", "dev"}, "dev"));
  EXPECT_FALSE(scope_allows({"staging", "dev"}, "production"));
  EXPECT_FALSE(scope_allows({"staging"}, "Staging"));
  EXPECT_TRUE(scope_allows({"staging"}, ""));  // not tied to an environment
}

TEST(Tokens, GeneratedTokensParseAndDiffer) {
  std::set<std::string> seen;
  std::map<char, int> counts;
  for (int i = 0; i < 300; ++i) {
    const NewToken t = generate_token();
    ASSERT_EQ(t.token.size(), kTokenChars);
    ASSERT_EQ(t.token.rfind("ferry_", 0), 0u);
    auto p = parse_token(t.token);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_EQ(p->id, t.id);
    EXPECT_EQ(p->secret.size(), kTokenSecretChars);
    EXPECT_EQ(t.hash, sha256_hex(t.token));
    EXPECT_TRUE(seen.insert(t.token).second);
    for (char c : p->secret) ++counts[c];
  }
  // 9600 secret characters over 62 symbols: every symbol shows up.
  EXPECT_EQ(counts.size(), 62u);
}

TEST(Tokens, MalformedTokensAreRefusedWithoutEchoingThem) {
  const std::string good = generate_token().token;
  std::vector<std::string> bad = {"", "ferry_", good + "x", good.substr(1), "x" + good.substr(1)};
  std::string upper_id = good;
  upper_id[6] = 'A';
  bad.push_back(upper_id);
  std::string no_sep = good;
  no_sep[18] = '-';
  bad.push_back(no_sep);
  std::string symbol = good;
  symbol[30] = '+';
  bad.push_back(symbol);
  for (const auto& t : bad) {
    auto p = parse_token(t);
    EXPECT_EQ(p.status().code(), Code::kUnauthenticated) << t;
    if (t.size() > 20) {
      EXPECT_EQ(p.status().message().find(t.substr(19)), std::string::npos);
    }
  }
}

TEST(Tokens, HashesCompareInConstantTimeAndMatchOnlyTheirToken) {
  const NewToken a = generate_token(), b = generate_token();
  EXPECT_TRUE(token_matches(a.token, a.hash));
  EXPECT_FALSE(token_matches(b.token, a.hash));
  EXPECT_FALSE(token_matches(a.token, a.hash.substr(1)));
  EXPECT_EQ(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TokenRecord record_for(const NewToken& t, std::string role, std::vector<std::string> envs = {}) {
  TokenRecord r;
  r.id = t.id;
  r.name = "ci";
  r.hash = t.hash;
  r.role = std::move(role);
  r.envs = std::move(envs);
  return r;
}

TEST(Tokens, CheckTokenAuthenticates) {
  const NewToken t = generate_token();
  TokenRecord r = record_for(t, "deployer");
  EXPECT_TRUE(check_token(r, t.token, kRolesNow).ok());
  // Same id, other secret.
  std::string forged = t.token;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  Status s = check_token(r, forged, kRolesNow);
  EXPECT_EQ(s.code(), Code::kUnauthenticated);
  EXPECT_EQ(s.message().find(forged.substr(19)), std::string::npos);
  EXPECT_NE(s.message().find(t.id), std::string::npos);
  // Another token's record.
  EXPECT_EQ(check_token(record_for(generate_token(), "admin"), t.token, kRolesNow).code(), Code::kUnauthenticated);
  r.expires_at_ms = kRolesNow;
  EXPECT_NE(check_token(r, t.token, kRolesNow).message().find("expired"), std::string::npos);
  r.expires_at_ms = kRolesNow + 1;
  EXPECT_TRUE(check_token(r, t.token, kRolesNow).ok());
  r.revoked = true;
  EXPECT_NE(check_token(r, t.token, kRolesNow).message().find("revoked"), std::string::npos);
}

TEST(Tokens, AuthorizeChecksRoleAndScope) {
  const NewToken t = generate_token();
  const TokenRecord deployer = record_for(t, "deployer", {"dev", "staging"});
  EXPECT_TRUE(authorize(deployer, Role::kViewer, "dev").ok());
  EXPECT_TRUE(authorize(deployer, Role::kDeployer, "staging").ok());
  Status role = authorize(deployer, Role::kApprover, "staging");
  EXPECT_EQ(role.code(), Code::kPermissionDenied);
  EXPECT_NE(role.message().find("has role deployer; this needs approver"), std::string::npos) << role.message();
  Status scope = authorize(deployer, Role::kDeployer, "production");
  EXPECT_EQ(scope.code(), Code::kPermissionDenied);
  EXPECT_NE(scope.message().find("limited to environments [dev, staging], not production"), std::string::npos);
  EXPECT_TRUE(authorize(record_for(t, "admin"), Role::kAdmin, "production").ok());
  EXPECT_EQ(authorize(record_for(t, "superuser"), Role::kViewer, "").code(), Code::kPermissionDenied);
}

}  // namespace
}  // namespace ferry
