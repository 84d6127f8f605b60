#include "common/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/verify_context.hpp>
#include <cerrno>
#include <fstream>
#include <mutex>
#include <sstream>

namespace ferry {

namespace {

template <typename T, void (*F)(T*)>
struct OsslFree {
  void operator()(T* p) const { F(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, OsslFree<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, OsslFree<X509, X509_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, OsslFree<X509_REQ, X509_REQ_free>>;
using BioPtr = std::unique_ptr<BIO, OsslFree<BIO, BIO_free_all>>;

BioPtr mem_bio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}
std::string bio_string(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}
PKeyPtr read_key(const std::string& pem) {
  auto b = mem_bio(pem);
  return PKeyPtr(b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr);
}
X509Ptr read_cert(const std::string& pem) {
  auto b = mem_bio(pem);
  return X509Ptr(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
}
std::string key_pem(EVP_PKEY* k) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  return bio_string(b.get());
}
std::string cert_pem(X509* c) {
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), c);
  return bio_string(b.get());
}
std::string serial_hex(X509* c) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr);
  if (!bn) return "";
  char* hex = BN_bn2hex(bn);
  std::string s = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}
std::string common_name(X509* c) {
  char buf[256] = {};
  const int n =
      X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}
bool set_name(X509_NAME* name, const std::string& cn) {
  return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                    0) == 1;
}
bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}
// A random positive 127-bit serial: unique without a counter to keep.
bool random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return false;
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  if (!bn) return false;
  const bool ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr;
  BN_free(bn);
  return ok;
}
Result<std::string> read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

// The serials of a revocation file, re-read when the file changes. Shared by the verify
// callback of one context, so by every handshake of it on any thread.
class RevokedFile {
 public:
  explicit RevokedFile(std::string path) : path_(std::move(path)) {}
  // True when `serial` is listed, or when the list exists but cannot be read.
  bool revoked(const std::string& serial) {
    struct stat st {};
    std::lock_guard lk(mu_);
    if (::stat(path_.c_str(), &st) != 0) {
      if (errno == ENOENT) {
        serials_.clear();
        seen_ = {};
        return false;
      }
      return true;
    }
    const Signature now{st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    if (!(now == seen_)) {
      std::ifstream f(path_);
      if (!f) return true;
      std::set<std::string> fresh;
      std::string line;
      while (std::getline(f, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty() && line[0] != '#') fresh.insert(line);
      }
      serials_ = std::move(fresh);
      seen_ = now;
    }
    return serials_.count(serial) > 0;
  }

 private:
  struct Signature {
    ino_t ino = 0;
    off_t size = -1;
    time_t sec = 0;
    long nsec = 0;
    bool operator==(const Signature&) const = default;
  };
  std::string path_;
  std::mutex mu_;
  Signature seen_;
  std::set<std::string> serials_;
};

TlsContext::TlsContext(Role role, std::string peer_name)
    : ctx_(role == Role::kServer ? boost::asio::ssl::context::tls_server
                                 : boost::asio::ssl::context::tls_client),
      role_(role),
      peer_name_(std::move(peer_name)) {}

Result<std::shared_ptr<TlsContext>> TlsContext::create(Role role, const TlsIdentity& id,
                                                       std::string peer_name) {
  std::shared_ptr<TlsContext> t(new TlsContext(role, std::move(peer_name)));
  SSL_CTX* ctx = t->ctx_.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  auto cert = read_cert(id.cert_pem);
  if (!cert) return invalid_argument("the TLS certificate is not a PEM certificate");
  auto key = read_key(id.key_pem);
  if (!key) return invalid_argument("the TLS key is not a PEM private key");
  if (SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    return invalid_argument("the TLS key does not match its certificate");
  auto ca = read_cert(id.ca_pem);
  if (!ca) return invalid_argument("the TLS CA is not a PEM certificate");
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca.get()) != 1)
    return invalid_argument("the TLS CA certificate could not be added");
  namespace ssl = boost::asio::ssl;
  if (role == Role::kServer) {
    // Every handshake is a full one, so every handshake checks the revocation list.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  t->ctx_.set_verify_mode(role == Role::kServer
                              ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                              : ssl::verify_peer);
  t->revoked_ = id.revoked_serials;
  if (!id.revoked_path.empty()) t->live_ = std::make_shared<RevokedFile>(id.revoked_path);
  auto revoked = t->revoked_;
  std::shared_ptr<RevokedFile> live = t->live_;
  const std::string want = t->peer_name_;
  t->ctx_.set_verify_callback([revoked, live, want](bool preverified, ssl::verify_context& vc) {
    if (!preverified) return false;
    X509_STORE_CTX* store = vc.native_handle();
    if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
    X509* peer = X509_STORE_CTX_get_current_cert(store);
    if (!peer) return false;
    const std::string serial = serial_hex(peer);
    if (revoked.count(serial) || (live && live->revoked(serial))) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REVOKED);
      return false;
    }
    if (!want.empty() && common_name(peer) != want) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
      return false;
    }
    return true;
  });
  return t;
}

bool TlsContext::revoked(const std::string& serial) const {
  return revoked_.count(serial) > 0 || (live_ && live_->revoked(serial));
}

std::string TlsContext::peer_serial(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string s = serial_hex(cert);
  X509_free(cert);
  return s;
}

Result<TlsIdentity> load_tls_identity(const std::string& cert_path, const std::string& key_path,
                                      const std::string& ca_path, const std::string& revoked_path) {
  TlsIdentity id;
  struct stat st {};
  if (stat(key_path.c_str(), &st) != 0) return not_found("TLS key " + key_path + " does not exist");
  if ((st.st_mode & 077) != 0)
    return permission_denied("TLS key " + key_path +
                             " is readable by group or others; chmod 600 it");
  auto cert = read_text(cert_path);
  if (!cert.ok()) return cert.status();
  auto key = read_text(key_path);
  if (!key.ok()) return key.status();
  auto ca = read_text(ca_path);
  if (!ca.ok()) return ca.status();
  id.cert_pem = std::move(*cert);
  id.key_pem = std::move(*key);
  id.ca_pem = std::move(*ca);
  id.revoked_path = revoked_path;
  return id;
}

Result<std::string> make_private_key() {
  PKeyPtr k(EVP_EC_gen("P-256"));
  if (!k) return internal_error("generating an EC P-256 key failed");
  return key_pem(k.get());
}

Result<std::string> make_csr(const std::string& key, const std::string& cn) {
  auto k = read_key(key);
  if (!k) return invalid_argument("the key is not a PEM private key");
  ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      !set_name(X509_REQ_get_subject_name(req.get()), cn) ||
      X509_REQ_set_pubkey(req.get(), k.get()) != 1 ||
      X509_REQ_sign(req.get(), k.get(), EVP_sha256()) <= 0)
    return internal_error("making a CSR for " + cn + " failed");
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(b.get(), req.get());
  return bio_string(b.get());
}

Result<CertAuthority> make_ca(const std::string& cn, int days) {
  PKeyPtr k(EVP_EC_gen("P-256"));
  X509Ptr c(X509_new());
  if (!k || !c) return internal_error("making the CA failed");
  X509_set_version(c.get(), 2);
  if (!random_serial(c.get()) || !set_name(X509_get_subject_name(c.get()), cn) ||
      X509_set_issuer_name(c.get(), X509_get_subject_name(c.get())) != 1)
    return internal_error("making the CA failed");
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(c.get(), k.get());
  if (!add_ext(c.get(), c.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_ext(c.get(), c.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(c.get(), c.get(), NID_subject_key_identifier, "hash") ||
      X509_sign(c.get(), k.get(), EVP_sha256()) <= 0)
    return internal_error("signing the CA certificate failed");
  return CertAuthority{cert_pem(c.get()), key_pem(k.get())};
}

Result<std::string> sign_csr(const CertAuthority& ca, const std::string& csr_pem,
                             const std::string& cn, int days) {
  auto ca_cert = read_cert(ca.cert_pem);
  auto ca_key = read_key(ca.key_pem);
  if (!ca_cert || !ca_key) return invalid_argument("the CA certificate or key does not load");
  auto b = mem_bio(csr_pem);
  ReqPtr req(b ? PEM_read_bio_X509_REQ(b.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!req) return invalid_argument("the CSR is not a PEM certificate signing request");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (!pub || X509_REQ_verify(req.get(), pub) != 1)
    return invalid_argument("the CSR's signature does not verify");
  X509Ptr c(X509_new());
  X509_set_version(c.get(), 2);
  if (!random_serial(c.get()) || !set_name(X509_get_subject_name(c.get()), cn) ||
      X509_set_issuer_name(c.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_set_pubkey(c.get(), pub) != 1)
    return internal_error("making the certificate for " + cn + " failed");
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), static_cast<long>(days) * 86400);
  if (!add_ext(c.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !add_ext(c.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature") ||
      !add_ext(c.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
      X509_sign(c.get(), ca_key.get(), EVP_sha256()) <= 0)
    return internal_error("signing the certificate for " + cn + " failed");
  return cert_pem(c.get());
}

Result<std::string> cert_serial(const std::string& pem) {
  auto c = read_cert(pem);
  if (!c) return invalid_argument("not a PEM certificate");
  return serial_hex(c.get());
}

Result<std::string> cert_common_name(const std::string& pem) {
  auto c = read_cert(pem);
  if (!c) return invalid_argument("not a PEM certificate");
  return common_name(c.get());
}

}  // namespace ferry
