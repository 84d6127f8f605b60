// Test certificates made with OpenSSL's API (no network, no CLI): a CA, certificates it
// signs for given DNS names, expired ones, and PEM files for the router and the clients.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::testing_router {

struct PkeyDel {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Del {
  void operator()(X509* x) const { X509_free(x); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, PkeyDel>;
using CertPtr = std::unique_ptr<X509, X509Del>;

inline KeyPtr make_test_key() {
  KeyPtr k(EVP_EC_gen("P-256"));
  if (!k) throw std::runtime_error("EVP_EC_gen failed");
  return k;
}

// A certificate for `cn` with `dns` names, valid from now+not_before_s to now+not_after_s,
// signed by `issuer`/`issuer_key` (self-signed when null). `ca`: a CA certificate.
inline CertPtr make_test_cert(const std::string& cn, const std::vector<std::string>& dns,
                              EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                              long not_before_s = -3600, long not_after_s = 86400,
                              long serial = 1) {
  CertPtr c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), not_before_s);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), not_after_s);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer : c.get(), c.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (!ext) throw std::runtime_error("extension " + value);
    X509_add_ext(c.get(), ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  if (ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!dns.empty()) {
    std::string san;
    for (const auto& d : dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    add(NID_subject_alt_name, san);
  }
  if (X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0)
    throw std::runtime_error("X509_sign failed");
  return c;
}

inline void write_test_pem(const std::string& path, X509* cert, EVP_PKEY* key = nullptr) {
  FILE* f = fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path);
  if (cert) PEM_write_X509(f, cert);
  if (key) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
}

// A CA with its key, written to dir/<name>-ca.pem, that issues leaf certificates.
struct TestCa {
  TestCa(const std::string& dir, const std::string& name)
      : key(make_test_key()),
        cert(make_test_cert(name + " test CA", {}, key.get(), nullptr, nullptr, true)),
        pem(dir + "/" + name + "-ca.pem") {
    write_test_pem(pem, cert.get());
  }
  // Writes dir/<file>.crt and dir/<file>.key for `dns` names; returns the pair of paths.
  std::pair<std::string, std::string> issue(const std::string& dir, const std::string& file,
                                            const std::vector<std::string>& dns,
                                            long not_before_s = -3600, long not_after_s = 86400,
                                            long serial = 2, std::string cn = "") const {
    KeyPtr k = make_test_key();
    CertPtr c = make_test_cert(!cn.empty()   ? cn
                               : dns.empty() ? file
                                             : dns.front(),
                               dns, k.get(), cert.get(), key.get(), false, not_before_s,
                               not_after_s, serial);
    std::string crt = dir + "/" + file + ".crt", kf = dir + "/" + file + ".key";
    write_test_pem(crt, c.get());
    write_test_pem(kf, nullptr, k.get());
    return {crt, kf};
  }
  KeyPtr key;
  CertPtr cert;
  std::string pem;
};

}  // namespace ferry::testing_router
