// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>

namespace ferry::routing {

namespace {

// TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 keeps OpenSSL's defaults,
// which are all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out = buf;  // the last one is usually the most specific
    e = ERR_get_error();
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The DNS names of `cert`: its subjectAltName DNS entries, else its common name.
std::vector<std::string> cert_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const unsigned char* d = ASN1_STRING_get0_data(n->d.dNSName);
      int len = ASN1_STRING_length(n->d.dNSName);
      if (d != nullptr && len > 0 && len < 256)
        names.push_back(lower(std::string_view(reinterpret_cast<const char*>(d), len)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256] = {};
    X509_NAME* subject = X509_get_subject_name(cert);
    if (subject != nullptr &&
        X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof cn - 1) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

bool name_matches(const std::string& pattern, std::string_view host) {
  if (pattern == host) return true;
  // "*.example.com" covers exactly one more label: a.example.com, not a.b.example.com.
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    size_t dot = host.find('.');
    return dot != std::string_view::npos && dot > 0 && host.substr(dot) == pattern.substr(1);
  }
  return false;
}

int on_servername(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<TlsContexts*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || *name == '\0') return SSL_TLSEXT_ERR_OK;  // the first certificate
  // An IP address is no host name (RFC 6066 forbids it in SNI), but clients dialling an
  // address send it anyway (wrk, some load balancers' probes): served as no SNI.
  boost::system::error_code ec;
  boost::asio::ip::make_address(name, ec);
  if (!ec) return SSL_TLSEXT_ERR_OK;
  int i = self->find(lower(name));
  if (i < 0) {
    // A host this app serves no certificate for: refused rather than answered with
    // another host's certificate.
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  // The connection keeps a reference to the context it moves to.
  if (i > 0) SSL_set_SSL_CTX(ssl, self->context(static_cast<size_t>(i)).native_handle());
  return SSL_TLSEXT_ERR_OK;
}

// ALPN (RFC 7301): "h2" when the app offers HTTP/2 (arg: its TlsContexts; null: it does not) and
// the client asks for it, else "http/1.1". A client that names neither gets no ALPN answer and is
// served as HTTP/1.1, as before ALPN was offered.
int on_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void* arg) {
  static const unsigned char kH2First[] = "\x02h2\x08http/1.1";
  static const unsigned char kH1Only[] = "\x08http/1.1";
  const unsigned char* ours = arg != nullptr ? kH2First : kH1Only;
  unsigned int ours_len = arg != nullptr ? sizeof kH2First - 1 : sizeof kH1Only - 1;
  unsigned char* chosen = nullptr;
  unsigned char chosen_len = 0;
  if (SSL_select_next_proto(&chosen, &chosen_len, ours, ours_len, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  *outlen = chosen_len;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

int TlsContexts::find(std::string_view host) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    for (const auto& n : entries_[i].names)
      if (name_matches(n, host)) return static_cast<int>(i);
  return -1;
}

Result<std::shared_ptr<TlsContexts>> TlsContexts::load(const TlsSpec& spec, int session_tickets) {
  if (spec.certificates.empty()) return invalid_argument("tls: no certificate");
  std::shared_ptr<TlsContexts> out(new TlsContexts());
  ERR_clear_error();
  for (const auto& c : spec.certificates) {
    SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
    if (raw == nullptr) return internal_error("tls: " + openssl_error());
    auto ctx = std::make_unique<ssl::context>(raw);  // owns raw from here
    int min = spec.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(raw, min);
    SSL_CTX_set_options(
        raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(raw, kTls12Ciphers) != 1)
      return internal_error("tls: cipher list: " + openssl_error());
    static const unsigned char kSid[] = "ferry-router";
    SSL_CTX_set_session_id_context(raw, kSid, sizeof kSid - 1);
    // OpenSSL sends two TLS 1.3 tickets after every full handshake; a client resumes with
    // one (browsers keep one per connection), so the second is work for nothing.
    SSL_CTX_set_num_tickets(raw, static_cast<size_t>(std::clamp(session_tickets, 0, 4)));
    if (session_tickets <= 0) {
      SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
    } else {
      // With tickets a client resumes from what it holds (TLS 1.2 and 1.3 alike): the
      // router stores no session, so a flood of TLS 1.2 handshakes fills no cache (OpenSSL
      // keeps up to 20,480) and no connection pays for sweeping one every 255 handshakes.
      SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE |
                                              SSL_SESS_CACHE_NO_AUTO_CLEAR);
    }
    if (SSL_CTX_use_certificate_chain_file(raw, c.cert_file.c_str()) != 1)
      return invalid_argument("tls: certificate " + c.cert_file +
                              " cannot be loaded: " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(raw, c.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        return invalid_argument("tls: key " + c.key_file + " does not match certificate " +
                                c.cert_file);
      }
      return invalid_argument("tls: key " + c.key_file + " cannot be loaded: " + openssl_error());
    }
    if (SSL_CTX_check_private_key(raw) != 1)
      return invalid_argument("tls: key " + c.key_file + " does not match certificate " +
                              c.cert_file);
    if (!spec.client_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(raw, spec.client_ca_file.c_str(), nullptr) != 1)
        return invalid_argument("tls: client_ca " + spec.client_ca_file +
                                " cannot be loaded: " + openssl_error());
      STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(spec.client_ca_file.c_str());
      if (cas == nullptr)
        return invalid_argument("tls: client_ca " + spec.client_ca_file + " holds no certificate");
      SSL_CTX_set_client_CA_list(raw, cas);
      SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    SSL_CTX_set_tlsext_servername_callback(raw, on_servername);
    SSL_CTX_set_tlsext_servername_arg(raw, out.get());
    SSL_CTX_set_alpn_select_cb(raw, on_alpn, spec.http2 ? out.get() : nullptr);
    Entry e;
    e.names = cert_names(SSL_CTX_get0_certificate(raw));
    e.ctx = std::move(ctx);
    out->entries_.push_back(std::move(e));
  }
  return out;
}

std::string tls_files_stamp(const TlsSpec& spec) {
  std::string stamp;
  auto add = [&](const std::string& path) {
    struct stat st {};
    if (path.empty()) return;
    if (stat(path.c_str(), &st) != 0) {
      stamp += path + ":missing;";
      return;
    }
    stamp += path + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
             std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  };
  for (const auto& c : spec.certificates) {
    add(c.cert_file);
    add(c.key_file);
  }
  add(spec.client_ca_file);
  return stamp;
}

bool valid_redirect_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return false;
    return std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

}  // namespace ferry::routing
