// TLS termination for the router: the certificates of an app's `tls:` loaded into OpenSSL
// contexts (TLS 1.2/1.3 only, a modern cipher list, optional client certificates), the
// SNI choice between them, and a stamp of the files so a changed certificate is reloaded.
//
// A TlsContexts is immutable once loaded. A connection holds a shared_ptr to the one it
// started with, so a reload (a new TlsContexts) never touches a connection already open.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/spec.h"

namespace ferry::routing {

namespace ssl = boost::asio::ssl;

class TlsContexts {
 public:
  // Loads every certificate (with its chain) and key of `spec`, checks each key matches
  // its certificate, and the client CA when set. An error names the file and the problem;
  // the caller keeps what it had. `session_tickets`: TLS 1.3 session tickets sent after
  // each full handshake (RouterOptions::tls_session_tickets; 0: none and no TLS 1.2
  // tickets either).
  static Result<std::shared_ptr<TlsContexts>> load(const TlsSpec& spec, int session_tickets = 1);

  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // The context a new connection starts with (the first certificate's); the SNI callback
  // moves the connection to the certificate whose names match the requested host, or
  // fails the handshake (unrecognized_name) for a host no certificate names. A client
  // without SNI gets the first certificate.
  ssl::context& initial() { return *entries_.front().ctx; }
  // The DNS names of certificate `i` (lower case; "*.example.com" for a wildcard).
  const std::vector<std::string>& names(size_t i) const { return entries_[i].names; }
  size_t size() const { return entries_.size(); }
  // Index of the certificate serving `host`, or -1.
  int find(std::string_view host) const;
  ssl::context& context(size_t i) { return *entries_[i].ctx; }

 private:
  TlsContexts() = default;
  struct Entry {
    std::unique_ptr<ssl::context> ctx;
    std::vector<std::string> names;
  };
  std::vector<Entry> entries_;
};

// A stamp of every file `spec` names (inode, size, modification time): it differs when a
// file is replaced or rewritten, so a poll can tell when to reload. Missing files stamp as
// missing (a reload then reports them).
std::string tls_files_stamp(const TlsSpec& spec);

// Whether `host` (a Host header's host part) is a DNS name or IP literal safe to put in a
// Location URL: letters, digits, '-', '.', or a bracketed IPv6 literal; 1-253 characters.
bool valid_redirect_host(std::string_view host);

}  // namespace ferry::routing
