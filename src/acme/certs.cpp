#include "acme/certs.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <ctime>
#include <memory>

namespace ferry::acme {

namespace {

constexpr const char* kPlaceholderOrg = "ferry placeholder (ACME certificate pending)";

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct CertBioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct ExtsFree {
  void operator()(STACK_OF(X509_EXTENSION) * s) const {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
  }
};

std::string san_value(const std::vector<std::string>& hosts) {
  std::string v;
  for (const auto& h : hosts) v += (v.empty() ? "DNS:" : ",DNS:") + h;
  return v;
}

int64_t asn1_time_ms(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::string pem_of(X509* x) {
  std::unique_ptr<BIO, CertBioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), x) != 1) return {};
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

Result<std::string> make_csr_der(const EcKey& key, const std::vector<std::string>& hosts) {
  if (hosts.empty()) return invalid_argument("acme: a CSR needs a host name");
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  bool ok = req && X509_REQ_set_version(req.get(), 0) == 1 &&
            X509_NAME_add_entry_by_txt(
                name, "CN", MBSTRING_ASC,
                reinterpret_cast<const unsigned char*>(hosts.front().c_str()), -1, -1, 0) == 1 &&
            X509_REQ_set_pubkey(req.get(), key.get()) == 1;
  std::unique_ptr<STACK_OF(X509_EXTENSION), ExtsFree> exts(sk_X509_EXTENSION_new_null());
  X509_EXTENSION* san =
      ok ? X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san_value(hosts).c_str())
         : nullptr;
  ok = ok && san != nullptr && sk_X509_EXTENSION_push(exts.get(), san) > 0 &&
       X509_REQ_add_extensions(req.get(), exts.get()) == 1 &&
       X509_REQ_sign(req.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) {
    ERR_clear_error();
    return internal_error("acme: cannot make the certificate signing request");
  }
  int len = i2d_X509_REQ(req.get(), nullptr);
  std::string der(static_cast<size_t>(len > 0 ? len : 0), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (len <= 0 || i2d_X509_REQ(req.get(), &p) != len)
    return internal_error("acme: cannot encode the certificate signing request");
  return der;
}

Result<std::string> placeholder_cert_pem(const EcKey& key, const std::vector<std::string>& hosts,
                                         int days) {
  if (hosts.empty()) return invalid_argument("acme: a certificate needs a host name");
  std::unique_ptr<X509, X509Free> c(X509_new());
  X509_NAME* name = X509_get_subject_name(c.get());
  std::unique_ptr<BIGNUM, void (*)(BIGNUM*)> serial(BN_new(), BN_free);
  bool ok = c && serial && BN_rand(serial.get(), 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(c.get())) != nullptr &&
            X509_set_version(c.get(), 2) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(c.get()), 86400L * days) != nullptr &&
            X509_set_pubkey(c.get(), key.get()) == 1 &&
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>(kPlaceholderOrg), -1,
                                       -1, 0) == 1 &&
            X509_NAME_add_entry_by_txt(
                name, "CN", MBSTRING_ASC,
                reinterpret_cast<const unsigned char*>(hosts.front().c_str()), -1, -1, 0) == 1 &&
            X509_set_issuer_name(c.get(), name) == 1;
  if (ok) {
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, c.get(), c.get(), nullptr, nullptr, 0);
    X509_EXTENSION* san =
        X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san_value(hosts).c_str());
    ok = san != nullptr && X509_add_ext(c.get(), san, -1) == 1;
    X509_EXTENSION_free(san);
  }
  ok = ok && X509_sign(c.get(), key.get(), EVP_sha256()) > 0;
  std::string pem = ok ? pem_of(c.get()) : std::string();
  if (pem.empty()) {
    ERR_clear_error();
    return internal_error("acme: cannot make the placeholder certificate");
  }
  return pem;
}

Result<CertInfo> read_cert_info(const std::string& pem) {
  std::unique_ptr<BIO, CertBioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> x(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)
                                        : nullptr);
  ERR_clear_error();
  if (!x) return invalid_argument("acme: no PEM certificate");
  CertInfo info;
  info.not_before_ms = asn1_time_ms(X509_get0_notBefore(x.get()));
  info.not_after_ms = asn1_time_ms(X509_get0_notAfter(x.get()));
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(x.get(), NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                    static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
      for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      info.names.push_back(std::move(v));
    }
    GENERAL_NAMES_free(sans);
  }
  if (const ASN1_INTEGER* s = X509_get0_serialNumber(x.get())) {
    std::unique_ptr<BIGNUM, void (*)(BIGNUM*)> bn(ASN1_INTEGER_to_BN(s, nullptr), BN_free);
    if (bn) {
      char* hex = BN_bn2hex(bn.get());
      if (hex != nullptr) info.serial = hex;
      OPENSSL_free(hex);
    }
  }
  char line[512] = {};
  X509_NAME_oneline(X509_get_issuer_name(x.get()), line, sizeof line - 1);
  info.issuer = line;
  char org[128] = {};
  info.placeholder = X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_organizationName,
                                               org, sizeof org - 1) > 0 &&
                     std::string_view(org) == kPlaceholderOrg;
  return info;
}

int count_pem_certs(const std::string& pem) {
  int n = 0;
  for (size_t at = pem.find("-----BEGIN CERTIFICATE-----"); at != std::string::npos;
       at = pem.find("-----BEGIN CERTIFICATE-----", at + 1))
    ++n;
  return n;
}

}  // namespace ferry::acme
