#include "acme/client.h"

#include <algorithm>
#include <cctype>

#include "acme/certs.h"
#include "common/json.h"

namespace ferry::acme {

namespace {

constexpr int kMaxNonceRetries = 5;
constexpr size_t kMaxAuthorizations = 100;

std::string clean_text(std::string_view s, size_t limit) {
  std::string out;
  for (char c : s) {
    if (out.size() >= limit) break;
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

Json parse_object(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  return j.is_object() ? j : Json::object();
}

std::string str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int retry_after_ms(const HttpReply& r, int fallback) {
  auto it = r.headers.find("retry-after");
  if (it == r.headers.end()) return fallback;
  int s = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9') return fallback;
    s = std::min(s * 10 + (c - '0'), 3600);
  }
  return std::clamp(s * 1000, 100, 10'000);
}

bool valid_nonce(std::string_view n) {
  return !n.empty() && n.size() <= 256 && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

}  // namespace

struct Client::Reply {
  HttpReply http;
  Json json;
};

bool valid_token(std::string_view token) {
  if (token.size() < 16 || token.size() > 256) return false;
  return std::all_of(token.begin(), token.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

std::string describe_problem(int status, const std::string& body) {
  Json p = parse_object(body);
  std::string type = str(p, "type");
  std::string detail = str(p, "detail");
  if (type.empty() && detail.empty()) return "HTTP " + std::to_string(status);
  std::string out = type + ": " + detail;
  if (auto sub = p.find("subproblems"); sub != p.end() && sub->is_array()) {
    int n = 0;
    for (const auto& s : *sub) {
      if (!s.is_object() || ++n > 5) break;
      std::string who;
      if (auto id = s.find("identifier"); id != s.end() && id->is_object()) who = str(*id, "value");
      out += "; " + who + ": " + str(s, "detail");
    }
  }
  return clean_text(out, 500);
}

Client::Client(Transport& transport, const EcKey& account_key, ClientOptions options)
    : t_(transport), key_(account_key), opts_(std::move(options)) {}

bool Client::sleep_ms(int ms) {
  return opts_.wait ? opts_.wait(ms) : true;
}

Status Client::load_directory() {
  auto r = t_.exchange("GET", opts_.directory_url, "", "application/json");
  if (!r.ok()) return r.status();
  if (r->status != 200)
    return unavailable("acme: directory " + opts_.directory_url.substr(0, 200) + ": " +
                       describe_problem(r->status, r->body));
  Json d = parse_object(r->body);
  new_nonce_url_ = str(d, "newNonce");
  new_account_url_ = str(d, "newAccount");
  new_order_url_ = str(d, "newOrder");
  if (new_nonce_url_.empty() || new_account_url_.empty() || new_order_url_.empty())
    return unavailable("acme: " + opts_.directory_url.substr(0, 200) +
                       " is not an ACME directory (newNonce, newAccount, newOrder missing)");
  return Status::Ok();
}

Status Client::fresh_nonce() {
  auto r = t_.exchange("HEAD", new_nonce_url_, "", "");
  if (!r.ok()) return r.status();
  auto it = r->headers.find("replay-nonce");
  if (it == r->headers.end() || !valid_nonce(it->second))
    return unavailable("acme: the CA gave no Replay-Nonce");
  nonce_ = it->second;
  return Status::Ok();
}

Result<Client::Reply> Client::post(const std::string& url, const std::string& payload,
                                   const std::string& accept) {
  for (int attempt = 0;; ++attempt) {
    if (nonce_.empty()) FERRY_RETURN_IF_ERROR(fresh_nonce());
    Json prot = {{"alg", "ES256"}, {"nonce", nonce_}, {"url", url}};
    if (kid_.empty())
      prot["jwk"] = Json::parse(key_.jwk());
    else
      prot["kid"] = kid_;
    nonce_.clear();  // used
    const std::string p64 = base64url(prot.dump());
    const std::string b64 = base64url(payload);
    auto sig = key_.sign_es256(p64 + "." + b64);
    if (!sig.ok()) return sig.status();
    Json jws = {{"protected", p64}, {"payload", b64}, {"signature", base64url(*sig)}};
    auto r = t_.exchange("POST", url, jws.dump(), accept);
    if (!r.ok()) return r.status();
    if (auto it = r->headers.find("replay-nonce");
        it != r->headers.end() && valid_nonce(it->second))
      nonce_ = it->second;
    Reply out{std::move(*r), Json::object()};
    if (out.http.status >= 400) {
      Json p = parse_object(out.http.body);
      if (str(p, "type") == "urn:ietf:params:acme:error:badNonce" && attempt < kMaxNonceRetries)
        continue;  // RFC 8555 section 6.5: retry with the nonce this answer carried
      return unavailable("acme: POST " + url.substr(0, 200) + ": " +
                         describe_problem(out.http.status, out.http.body));
    }
    if (accept.empty()) out.json = parse_object(out.http.body);
    return out;
  }
}

Status Client::register_account() {
  Json req = {{"termsOfServiceAgreed", true}};
  if (!opts_.email.empty()) req["contact"] = Json::array({"mailto:" + opts_.email});
  kid_.clear();
  auto r = post(new_account_url_, req.dump());
  if (!r.ok()) return r.status().with_context("new-account");
  auto loc = r->http.headers.find("location");
  if (loc == r->http.headers.end() || loc->second.rfind("https://", 0) != 0)
    return unavailable("acme: new-account: the CA gave no account URL");
  kid_ = loc->second;
  return Status::Ok();
}

Status Client::authorize(const std::string& authz_url, const ChallengeResponder& responder) {
  auto a = post(authz_url, "");
  if (!a.ok()) return a.status();
  std::string host;
  if (auto id = a->json.find("identifier"); id != a->json.end() && id->is_object())
    host = clean_text(str(*id, "value"), 253);
  std::string status = str(a->json, "status");
  if (status == "valid") return Status::Ok();
  if (status != "pending")
    return unavailable("acme: authorization for " + host + " is " + clean_text(status, 20));
  std::string token, chall_url;
  if (auto cs = a->json.find("challenges"); cs != a->json.end() && cs->is_array())
    for (const auto& c : *cs)
      if (c.is_object() && str(c, "type") == "http-01") {
        token = str(c, "token");
        chall_url = str(c, "url");
      }
  if (token.empty() || chall_url.empty())
    return unavailable("acme: the CA offers no http-01 challenge for " + host);
  if (!valid_token(token))
    return unavailable("acme: the CA gave a malformed challenge token for " + host);
  const std::string key_auth = token + "." + key_.thumbprint();
  responder.publish(token, key_auth);
  struct Withdraw {
    const ChallengeResponder& r;
    const std::string& token;
    ~Withdraw() { r.withdraw(token); }
  } withdraw{responder, token};
  auto go = post(chall_url, "{}");
  if (!go.ok()) return go.status().with_context("challenge for " + host);
  int waited = 0;
  int next = retry_after_ms(go->http, opts_.poll_interval_ms);
  while (waited < opts_.poll_timeout_ms) {
    if (!sleep_ms(next)) return unavailable("acme: stopping");
    waited += next;
    auto poll = post(authz_url, "");
    if (!poll.ok()) return poll.status();
    std::string s = str(poll->json, "status");
    if (s == "valid") return Status::Ok();
    if (s != "pending") {
      std::string why;
      if (auto cs = poll->json.find("challenges"); cs != poll->json.end() && cs->is_array())
        for (const auto& c : *cs)
          if (c.is_object() && str(c, "type") == "http-01")
            if (auto e = c.find("error"); e != c.end() && e->is_object())
              why = describe_problem(400, e->dump());
      return unavailable("acme: the http-01 challenge for " + host + " failed" +
                         (why.empty() ? " (" + clean_text(s, 20) + ")" : ": " + why));
    }
    next = retry_after_ms(poll->http, opts_.poll_interval_ms);
  }
  return deadline_exceeded("acme: the CA did not validate " + host + " within " +
                           std::to_string(opts_.poll_timeout_ms / 1000) + " s");
}

Result<std::string> Client::poll_order(const std::string& order_url) {
  int waited = 0;
  int next = opts_.poll_interval_ms / 2;
  for (;;) {
    auto o = post(order_url, "");
    if (!o.ok()) return o.status();
    std::string s = str(o->json, "status");
    if (s == "valid") {
      std::string cert = str(o->json, "certificate");
      if (cert.empty()) return unavailable("acme: the valid order names no certificate");
      return cert;
    }
    if (s != "processing" && s != "ready" && s != "pending") {
      std::string why;
      if (auto e = o->json.find("error"); e != o->json.end() && e->is_object())
        why = ": " + describe_problem(400, e->dump());
      return unavailable("acme: the order became " + clean_text(s, 20) + why);
    }
    if (waited >= opts_.poll_timeout_ms)
      return deadline_exceeded("acme: the order was not issued within " +
                               std::to_string(opts_.poll_timeout_ms / 1000) + " s");
    next = retry_after_ms(o->http, std::max(next, 100));
    if (!sleep_ms(next)) return unavailable("acme: stopping");
    waited += next;
  }
}

Result<Issued> Client::issue(const std::vector<std::string>& hosts,
                             const ChallengeResponder& responder) {
  if (hosts.empty()) return invalid_argument("acme: no host name to order a certificate for");
  FERRY_RETURN_IF_ERROR(load_directory());
  FERRY_RETURN_IF_ERROR(register_account());
  Json ids = Json::array();
  for (const auto& h : hosts) ids.push_back({{"type", "dns"}, {"value", h}});
  auto order = post(new_order_url_, Json{{"identifiers", ids}}.dump());
  if (!order.ok()) return order.status().with_context("new-order");
  auto loc = order->http.headers.find("location");
  std::string finalize = str(order->json, "finalize");
  if (loc == order->http.headers.end() || finalize.empty())
    return unavailable("acme: new-order: the CA gave no order URL or finalize URL");
  const std::string order_url = loc->second;
  auto authz = order->json.find("authorizations");
  if (authz == order->json.end() || !authz->is_array() || authz->empty() ||
      authz->size() > kMaxAuthorizations)
    return unavailable("acme: new-order: the order lists no authorization");
  for (const auto& a : *authz) {
    if (!a.is_string()) return unavailable("acme: new-order: a malformed authorization URL");
    FERRY_RETURN_IF_ERROR(authorize(a.get<std::string>(), responder));
  }
  auto cert_key = EcKey::generate();
  if (!cert_key.ok()) return cert_key.status();
  auto csr = make_csr_der(*cert_key, hosts);
  if (!csr.ok()) return csr.status();
  auto fin = post(finalize, Json{{"csr", base64url(*csr)}}.dump());
  if (!fin.ok()) return fin.status().with_context("finalize");
  auto cert_url = poll_order(order_url);
  if (!cert_url.ok()) return cert_url.status();
  auto chain = post(*cert_url, "", "application/pem-certificate-chain");
  if (!chain.ok()) return chain.status().with_context("certificate download");
  if (count_pem_certs(chain->http.body) < 1)
    return unavailable("acme: the certificate download holds no PEM certificate");
  auto info = read_cert_info(chain->http.body);
  if (!info.ok()) return info.status();
  for (const auto& h : hosts)
    if (std::find(info->names.begin(), info->names.end(), h) == info->names.end())
      return unavailable("acme: the issued certificate does not name " + h);
  return Issued{chain->http.body, cert_key->private_pem()};
}

}  // namespace ferry::acme
