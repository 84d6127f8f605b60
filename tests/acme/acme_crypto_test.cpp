// The ACME client's pieces without a CA: base64url, the JWK and its thumbprint, ES256
// signatures checked with OpenSSL's own verifier, the CSR, the placeholder, and what the
// client makes of hostile CA answers (problem documents, tokens).
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <map>
#include <memory>

#include "acme/certs.h"
#include "acme/client.h"
#include "acme/ec_key.h"
#include "common/crypto.h"
#include "common/json.h"

namespace ferry::acme {
namespace {

TEST(AcmeBase64Url, MatchesRfc4648WithoutPadding) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("foob"), "Zm9vYg");
  EXPECT_EQ(base64url(std::string("\xfb\xff\xfe", 3)), "-__-");
}

// r||s back to DER, verified by OpenSSL against the key's public half.
bool verify_es256(const EcKey& key, std::string_view data, const std::string& sig) {
  if (sig.size() != 64) return false;
  ECDSA_SIG* s = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
  BIGNUM* ss = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(s, r, ss);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(s, &der);
  ECDSA_SIG_free(s);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
            EVP_DigestVerify(ctx, der, static_cast<size_t>(len),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

TEST(AcmeEcKey, SignsEs256ThatOpenSslVerifies) {
  auto key = EcKey::generate();
  ASSERT_TRUE(key.ok());
  auto sig = key->sign_es256("header.payload");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(verify_es256(*key, "header.payload", *sig));
  EXPECT_FALSE(verify_es256(*key, "header.payloaD", *sig));
}

TEST(AcmeEcKey, JwkHasThumbprintOrderAndRoundTripsThroughPem) {
  auto key = EcKey::generate();
  ASSERT_TRUE(key.ok());
  const std::string jwk = key->jwk();
  // RFC 7638: the required members in lexicographic order, no whitespace.
  EXPECT_EQ(jwk.rfind(R"({"crv":"P-256","kty":"EC","x":")", 0), 0u) << jwk;
  Json j = Json::parse(jwk);
  EXPECT_EQ(j["x"].get<std::string>().size(), 43u);  // 32 bytes, unpadded
  EXPECT_EQ(j["y"].get<std::string>().size(), 43u);
  EXPECT_EQ(key->thumbprint(), base64url(sha256_raw(jwk)));
  auto again = EcKey::from_pem(key->private_pem());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->jwk(), jwk);
}

TEST(AcmeEcKey, RefusesWhatIsNotAP256Key) {
  EXPECT_FALSE(EcKey::from_pem("not a key").ok());
  EVP_PKEY* p384 = EVP_EC_gen("P-384");
  ASSERT_NE(p384, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, p384, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(p384);
  auto k = EcKey::from_pem(pem);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.status().message().find("P-256"), std::string::npos);
}

TEST(AcmeCerts, CsrNamesEveryHostAndIsSigned) {
  auto key = EcKey::generate();
  ASSERT_TRUE(key.ok());
  auto der = make_csr_der(*key, {"a.example.com", "b.example.com"});
  ASSERT_TRUE(der.ok());
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(X509_REQ_verify(req, key->get()), 1);
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  std::string sans;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name) continue;
    BIO* bio = BIO_new(BIO_s_mem());
    X509V3_EXT_print(bio, e, 0, 0);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    sans.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  EXPECT_NE(sans.find("DNS:a.example.com"), std::string::npos) << sans;
  EXPECT_NE(sans.find("DNS:b.example.com"), std::string::npos) << sans;
  EXPECT_FALSE(make_csr_der(*key, {}).ok());
}

TEST(AcmeCerts, PlaceholderIsMarkedAndNamesTheHosts) {
  auto key = EcKey::generate();
  ASSERT_TRUE(key.ok());
  auto pem = placeholder_cert_pem(*key, {"a.example.com", "b.example.com"}, 90);
  ASSERT_TRUE(pem.ok());
  auto info = read_cert_info(*pem);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->placeholder);
  EXPECT_EQ(info->names, (std::vector<std::string>{"a.example.com", "b.example.com"}));
  EXPECT_GT(info->not_after_ms - info->not_before_ms, 89LL * 86400 * 1000);
  EXPECT_FALSE(read_cert_info("-----BEGIN CERTIFICATE-----\ngarbage\n").ok());
  EXPECT_EQ(count_pem_certs(*pem + *pem), 2);
}

// Attacker: a CA (or whatever answers at its address) sends hostile problem documents; the
// text that reaches logs and status stays one bounded line.
TEST(AcmeProblem, HostileDocumentsBecomeOneBoundedLine) {
  EXPECT_EQ(describe_problem(503, "<html>oops</html>"), "HTTP 503");
  EXPECT_EQ(describe_problem(400, ""), "HTTP 400");
  Json p = {{"type", "urn:ietf:params:acme:error:unauthorized"},
            {"detail", "line1\nline2\r\x1b[31mred"},
            {"subproblems", Json::array({{{"identifier", {{"type", "dns"}, {"value", "a.test"}}},
                                          {"detail", "no\nanswer"}}})}};
  std::string d = describe_problem(403, p.dump());
  EXPECT_EQ(d.find('\n'), std::string::npos);
  EXPECT_EQ(d.find('\r'), std::string::npos);
  EXPECT_EQ(d.find('\x1b'), std::string::npos);
  EXPECT_NE(d.find("unauthorized"), std::string::npos);
  EXPECT_NE(d.find("a.test: no answer"), std::string::npos) << d;
  Json big = {{"type", "t"}, {"detail", std::string(100000, 'x')}};
  EXPECT_LE(describe_problem(400, big.dump()).size(), 500u);
  Json wrong_types = {{"type", 5}, {"detail", Json::array()}, {"subproblems", "x"}};
  EXPECT_EQ(describe_problem(400, wrong_types.dump()), "HTTP 400");
}

TEST(AcmeToken, OnlyBase64UrlTokensOfSaneLength) {
  EXPECT_TRUE(valid_token("abcdefghijklmnop_-0123456789"));
  EXPECT_FALSE(valid_token("short"));
  EXPECT_FALSE(valid_token("../../../../etc/passwd/xxxx"));
  EXPECT_FALSE(valid_token("abcdefghijklmnop?x=1"));
  EXPECT_FALSE(valid_token(std::string(257, 'a')));
  EXPECT_FALSE(valid_token("abcdefghijklmnop%2F"));
}

// A scripted CA: answers by method and URL, recording what the client sent.
class ScriptedCa final : public Transport {
 public:
  std::map<std::string, std::vector<HttpReply>> replies;  // "METHOD url" → answers in turn
  std::vector<std::string> sent;
  Result<HttpReply> exchange(const std::string& method, const std::string& url,
                             const std::string& body, const std::string&) override {
    sent.push_back(method + " " + url + " " + body);
    auto& q = replies[method + " " + url];
    if (q.empty()) return unavailable("no scripted answer for " + method + " " + url);
    HttpReply r = q.front();
    if (q.size() > 1) q.erase(q.begin());
    return r;
  }
};

HttpReply json_reply(int status, const Json& j, std::map<std::string, std::string> h = {}) {
  HttpReply r;
  r.status = status;
  r.body = j.dump();
  r.headers = std::move(h);
  r.headers["replay-nonce"] = "nonce" + std::to_string(status);
  return r;
}

TEST(AcmeClient, RetriesBadNonceThenReportsTheCasRefusal) {
  ScriptedCa ca;
  const std::string dir = "https://ca.test/dir";
  ca.replies["GET " + dir] = {json_reply(200, {{"newNonce", "https://ca.test/nonce"},
                                               {"newAccount", "https://ca.test/acct"},
                                               {"newOrder", "https://ca.test/order"}})};
  ca.replies["HEAD https://ca.test/nonce"] = {json_reply(200, Json::object())};
  Json bad_nonce = {{"type", "urn:ietf:params:acme:error:badNonce"}, {"detail", "stale"}};
  Json refused = {{"type", "urn:ietf:params:acme:error:rejectedIdentifier"},
                  {"detail", "policy forbids"}};
  ca.replies["POST https://ca.test/acct"] = {
      json_reply(400, bad_nonce),
      json_reply(201, {{"status", "valid"}}, {{"location", "https://ca.test/acct/1"}})};
  ca.replies["POST https://ca.test/order"] = {json_reply(400, refused)};
  auto key = EcKey::generate();
  ASSERT_TRUE(key.ok());
  Client client(ca, *key, {.directory_url = dir, .email = "ops@example.com"});
  ChallengeResponder none{[](const std::string&, const std::string&) {}, [](const std::string&) {}};
  auto r = client.issue({"a.example.com"}, none);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("rejectedIdentifier"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("new-order"), std::string::npos);
  // The account POST was sent twice (bad nonce, then accepted), and never carried the key.
  int account_posts = 0;
  for (const auto& s : ca.sent)
    if (s.rfind("POST https://ca.test/acct ", 0) == 0) {
      ++account_posts;
      EXPECT_EQ(s.find("PRIVATE"), std::string::npos);
    }
  EXPECT_EQ(account_posts, 2);
}

TEST(AcmeClient, RefusesAMalformedChallengeToken) {
  ScriptedCa ca;
  const std::string dir = "https://ca.test/dir";
  ca.replies["GET " + dir] = {json_reply(200, {{"newNonce", "https://ca.test/nonce"},
                                               {"newAccount", "https://ca.test/acct"},
                                               {"newOrder", "https://ca.test/order"}})};
  ca.replies["HEAD https://ca.test/nonce"] = {json_reply(200, Json::object())};
  ca.replies["POST https://ca.test/acct"] = {
      json_reply(200, {{"status", "valid"}}, {{"location", "https://ca.test/acct/1"}})};
  ca.replies["POST https://ca.test/order"] = {
      json_reply(201,
                 {{"status", "pending"},
                  {"authorizations", {"https://ca.test/authz/1"}},
                  {"finalize", "https://ca.test/finalize/1"}},
                 {{"location", "https://ca.test/order/1"}})};
  ca.replies["POST https://ca.test/authz/1"] = {json_reply(
      200, {{"status", "pending"},
            {"identifier", {{"type", "dns"}, {"value", "a.example.com"}}},
            {"challenges",
             {{{"type", "http-01"}, {"url", "https://ca.test/ch/1"}, {"token", "../../x"}}}}})};
  auto key = EcKey::generate();
  ASSERT_TRUE(key.ok());
  Client client(ca, *key, {.directory_url = dir});
  int published = 0;
  ChallengeResponder count{[&](const std::string&, const std::string&) { ++published; },
                           [](const std::string&) {}};
  auto r = client.issue({"a.example.com"}, count);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("malformed challenge token"), std::string::npos);
  EXPECT_EQ(published, 0);
}

}  // namespace
}  // namespace ferry::acme
