#pragma once
// Reading an HTTP answer with a bound on its body, for every client of ferry (the CLI's
// HttpClient, the local agent's Unix socket, the server's kept-alive agent connections).
//
// Beast's parser limit alone is not enough: with Boost 1.74 a body that arrives in the same
// read as its head was taken whole past `body_limit` (HttpClient.AnAnswerOverTheLimitIs
// AnErrorWhetherDeclaredOrChunked). So the head is read first, a declared length over the
// limit is refused before any of the body is read, the parser's limit bounds a chunked
// body while it is read, and the body's size is checked once more at the end.

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string>

#include "common/status.h"

namespace ferry {

enum class LimitedRead { kDone, kTooLarge, kFailed };

// The error every client gives for an answer read_limited_response found kTooLarge.
inline Status answer_over_limit(const std::string& where, size_t limit) {
  return unavailable("the answer from " + where + " is over the limit of " + std::to_string(limit) +
                     " bytes");
}

// Reads one answer from `stream` into `parser`. `run` drives the io_context until the
// operation started on it completes (callers own their io_context and deadlines). On
// kFailed, *ec holds the transport or parse error (a timeout included).
template <class Stream, class Run>
LimitedRead read_limited_response(
    Stream& stream, boost::beast::flat_buffer& buf,
    boost::beast::http::response_parser<boost::beast::http::string_body>& parser, size_t limit,
    Run&& run, boost::beast::error_code* ec) {
  namespace http = boost::beast::http;
  parser.body_limit(limit);
  http::async_read_header(stream, buf, parser,
                          [ec](boost::beast::error_code e, size_t) { *ec = e; });
  run();
  if (*ec == http::error::body_limit) return LimitedRead::kTooLarge;  // seen at the head
  if (*ec) return LimitedRead::kFailed;
  if (parser.content_length() && *parser.content_length() > limit) return LimitedRead::kTooLarge;
  if (!parser.is_done()) {
    http::async_read(stream, buf, parser, [ec](boost::beast::error_code e, size_t) { *ec = e; });
    run();
    if (*ec == http::error::body_limit) return LimitedRead::kTooLarge;
    if (*ec) return LimitedRead::kFailed;
  }
  if (parser.get().body().size() > limit) return LimitedRead::kTooLarge;
  return LimitedRead::kDone;
}

}  // namespace ferry
