// apps.<name>.tls and apps.<name>.access_log: the router's edge settings. The certificate
// files are read here too (validate refuses what the agent's router could not load: a
// file it cannot read, a key that does not match its certificate, an expired certificate).
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>

#include "config/parsers.h"

namespace ferry::config {

namespace {

struct FileCloser {
  void operator()(FILE* f) const { fclose(f); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// An absolute path to a readable file; an error on `f` otherwise.
bool readable_file(const Field& f, const std::string& path) {
  if (path.empty() || path.front() != '/') {
    f.error("\"" + path.substr(0, 200) +
            "\" is not an absolute path: the agent reads it, from its own working directory");
    return false;
  }
  if (access(path.c_str(), R_OK) != 0) {
    f.error("cannot read " + path.substr(0, 200) + ": check the path and its permissions");
    return false;
  }
  return true;
}

// The certificates of a PEM file, first the leaf.
std::vector<X509Ptr> read_certs(const std::string& path) {
  std::vector<X509Ptr> out;
  std::unique_ptr<FILE, FileCloser> fp(fopen(path.c_str(), "r"));
  if (!fp) return out;
  while (X509* x = PEM_read_X509(fp.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();
  return out;
}

void check_certificate(const Field& at, const TlsCertSpec& c) {
  Field cert_f = at.child("cert");
  Field key_f = at.child("key");
  bool cert_ok = readable_file(cert_f, c.cert_file);
  bool key_ok = readable_file(key_f, c.key_file);
  if (!cert_ok) return;
  auto certs = read_certs(c.cert_file);
  if (certs.empty()) {
    cert_f.error(c.cert_file + " holds no PEM certificate");
    return;
  }
  X509* leaf = certs.front().get();
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    cert_f.error("the certificate in " + c.cert_file + " has expired: renew it");
    return;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    cert_f.error("the certificate in " + c.cert_file + " is not valid yet (check the clock)");
    return;
  }
  if (!key_ok) return;
  std::unique_ptr<FILE, FileCloser> fp(fopen(c.key_file.c_str(), "r"));
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      fp ? PEM_read_PrivateKey(fp.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) {
    key_f.error(c.key_file + " holds no PEM private key (an encrypted key is not supported)");
    return;
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    key_f.error("the key in " + c.key_file + " does not match the certificate in " + c.cert_file);
  }
}

void parse_cert_pair(const Field& f, TlsCertSpec& out) {
  f.required("cert").get(out.cert_file, 1024);
  f.required("key").get(out.key_file, 1024);
  if (!out.cert_file.empty() && !out.key_file.empty()) check_certificate(f, out);
}

bool acme_host_ok(const std::string& h) {
  if (h.empty() || h.size() > 253 || h.find('.') == std::string::npos) return false;
  size_t label = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    char c = h[i];
    if (c == '.') {
      if (label == 0 || h[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || (c == '-' && label > 0)) ||
        ++label > 63)
      return false;
  }
  if (label == 0 || h.back() == '-') return false;
  // An IP address is no DNS name (HTTP-01 certificates name hosts).
  return !std::all_of(h.begin(), h.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
  });
}

// apps.<name>.tls.acme: the hosts, the account's contact and the CA's directory.
void parse_acme(const Field& f, AcmeSpec& out) {
  if (!f.expect_map({"hosts", "email", "directory", "ca_bundle"})) return;
  Field hosts = f.required("hosts");
  std::vector<std::string> list;
  if (hosts.get_string_list(list, 100)) {
    if (list.empty()) hosts.error("acme needs at least one host name the certificate names");
    for (auto& h : list) {
      std::string lower = h;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower.rfind("*.", 0) == 0) {
        hosts.error("\"" + h.substr(0, 100) +
                    "\": a wildcard needs the DNS-01 challenge; the router answers HTTP-01 only");
      } else if (!acme_host_ok(lower)) {
        hosts.error("\"" + h.substr(0, 100) +
                    "\" is not a DNS name a public CA can validate (letters, digits, '-', "
                    "at least two labels, no IP address)");
      } else if (std::find(out.hosts.begin(), out.hosts.end(), lower) == out.hosts.end()) {
        out.hosts.push_back(lower);
      }
    }
  }
  Field email = f.child("email");
  std::string e;
  if (email.get(e, 254)) {
    size_t at = e.find('@');
    bool ok = at != std::string::npos && at > 0 && at + 1 < e.size() &&
              e.find('@', at + 1) == std::string::npos &&
              std::none_of(e.begin(), e.end(), [](char c) {
                return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == ',' || c == '<' ||
                       c == '>';
              });
    if (ok)
      out.email = e;
    else
      email.error("\"" + e.substr(0, 100) + "\" is not an email address");
  }
  Field dir = f.child("directory");
  std::string d;
  if (dir.get(d, 1024)) {
    if (d.rfind("https://", 0) != 0 || d.size() <= 8 || std::any_of(d.begin(), d.end(), [](char c) {
          return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
        }))
      dir.error("\"" + d.substr(0, 200) +
                "\" is not an https:// URL: an ACME directory is served over HTTPS (RFC 8555)");
    else
      out.directory = d;
  }
  Field ca = f.child("ca_bundle");
  if (ca.get(out.ca_bundle_file, 1024) && readable_file(ca, out.ca_bundle_file) &&
      read_certs(out.ca_bundle_file).empty())
    ca.error(out.ca_bundle_file + " holds no PEM certificate");
}

}  // namespace

void parse_tls(const Field& f, uint16_t app_port, TlsSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"cert", "key", "certificates", "min_version", "client_ca", "http_port",
                     "redirect", "hsts", "acme", "http2", "http2_max_streams"}))
    return;
  bool one = f.child("cert").present() || f.child("key").present();
  Field list = f.child("certificates");
  if (one && list.present()) {
    f.error("use either cert and key (one certificate) or certificates (several), not both");
    return;
  }
  Field acme = f.child("acme");
  if (acme.present() && (one || list.present())) {
    acme.error("acme obtains the certificate itself: remove cert/key/certificates, or acme");
    return;
  }
  if (acme.present()) parse_acme(acme, out.acme);
  if (one) {
    TlsCertSpec c;
    parse_cert_pair(f, c);
    out.certificates.push_back(c);
  } else if (list.present()) {
    for (const Field& item : list.items(20)) {
      if (!item.expect_map({"cert", "key"})) continue;
      TlsCertSpec c;
      parse_cert_pair(item, c);
      out.certificates.push_back(c);
    }
  }
  if (out.certificates.empty() && !acme.present()) {
    f.error(
        "tls needs a certificate: cert and key, certificates: [{cert, key}, …], or acme: "
        "{hosts: [...]}");
    return;
  }
  Field minv = f.child("min_version");
  std::string v;
  if (minv.get(v, 8)) {
    if (v == "1.2" || v == "1.3")
      out.min_version = v;
    else
      minv.error("\"" + v.substr(0, 8) +
                 "\" is not a TLS version the router offers: use 1.2 or 1.3");
  }
  Field ca = f.child("client_ca");
  if (ca.get(out.client_ca_file, 1024) && readable_file(ca, out.client_ca_file) &&
      read_certs(out.client_ca_file).empty())
    ca.error(out.client_ca_file + " holds no PEM certificate");
  Field hp = f.child("http_port");
  int port = 0;
  if (hp.get_int(port, 1, 65535)) {
    if (port == app_port)
      hp.error("http_port " + std::to_string(port) +
               " is the app's TLS port: the plain HTTP port must be another");
    else
      out.http_port = static_cast<uint16_t>(port);
  }
  Field redirect = f.child("redirect");
  if (redirect.get_bool(out.redirect) && out.redirect && out.http_port == 0)
    redirect.error("redirect needs http_port: the plain HTTP port that answers with the redirect");
  if (out.acme.enabled() && out.http_port == 0)
    acme.error(
        "acme answers the CA's HTTP-01 challenge on the plain HTTP port: set tls.http_port (80 "
        "for a public CA)");
  if (out.acme.enabled() && out.http_port != 0 && out.http_port != 80 &&
      out.acme.directory.find(".api.letsencrypt.org/") != std::string::npos)
    hp.error("Let's Encrypt validates HTTP-01 on port 80 only: http_port " +
             std::to_string(out.http_port) + " cannot answer it (use 80)");
  f.child("http2").get_bool(out.http2);
  Field streams = f.child("http2_max_streams");
  if (streams.get_int(out.http2_max_streams, 1, 1000) && !out.http2)
    streams.error("http2_max_streams limits HTTP/2 streams, but http2 is false: remove one");
  Field hsts = f.child("hsts");
  if (hsts.present() && hsts.expect_map({"max_age", "include_subdomains"})) {
    hsts.required("max_age").get_int64(out.hsts_max_age_s, 0, 2 * 365 * 86400LL);
    hsts.child("include_subdomains").get_bool(out.hsts_include_subdomains);
  }
}

void parse_access_log(const Field& f, AccessLogSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"path", "max_size", "keep"})) return;
  Field path = f.required("path");
  std::string p;
  if (path.get(p, 1024)) {
    size_t slash = p.rfind('/');
    if (p.empty() || p.front() != '/' || slash + 1 == p.size()) {
      path.error("\"" + p.substr(0, 200) + "\" is not an absolute file path");
    } else {
      std::string dir = slash == 0 ? "/" : p.substr(0, slash);
      if (access(dir.c_str(), W_OK) != 0)
        path.error("cannot write in " + dir.substr(0, 200) +
                   ": the folder must exist and be writable by the agent");
      else
        out.path = p;
    }
  }
  Field size = f.child("max_size");
  std::string text;
  if (size.get(text, 32)) {
    int64_t bytes = 0;
    if (!parse_byte_size(text, bytes) || bytes < 4096 || bytes > (1LL << 34))
      size.error("\"" + text + "\" is not a size from 4KB to 16GB: write e.g. 100MB");
    else
      out.max_bytes = bytes;
  }
  f.child("keep").get_int(out.keep, 0, 100);
}

}  // namespace ferry::config
