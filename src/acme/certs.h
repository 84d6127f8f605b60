// The X.509 pieces an ACME client needs: the certificate signing request sent to finalize
// an order, a self-signed placeholder the router serves until the first certificate is
// issued, and what a PEM chain's leaf says (names, validity, serial).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "acme/ec_key.h"
#include "common/status.h"

namespace ferry::acme {

// A CSR (DER) for `hosts` signed by `key`: the first host is the subject's common name,
// all are subjectAltName DNS entries.
Result<std::string> make_csr_der(const EcKey& key, const std::vector<std::string>& hosts);

// A self-signed certificate (PEM) for `hosts`, valid `days` from an hour ago, whose subject
// organization marks it as ferry's placeholder (CertInfo::placeholder).
Result<std::string> placeholder_cert_pem(const EcKey& key, const std::vector<std::string>& hosts,
                                         int days);

struct CertInfo {
  std::vector<std::string> names;  // subjectAltName DNS entries, lower case, in order
  int64_t not_before_ms = 0;       // unix ms
  int64_t not_after_ms = 0;
  std::string serial;  // hex
  std::string issuer;  // one line
  bool placeholder = false;
};

// The leaf (first certificate) of a PEM chain; kInvalidArgument when there is none.
Result<CertInfo> read_cert_info(const std::string& pem);

// How many certificates a PEM text holds (a chain from the CA must hold at least one).
int count_pem_certs(const std::string& pem);

}  // namespace ferry::acme
