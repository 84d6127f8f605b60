#include "common/status.h"

#include <array>

namespace ferry {
namespace {
struct CodeInfo {
  Code code;
  std::string_view name;
  int http;
};
constexpr std::array<CodeInfo, 12> kCodes{{
    {Code::kOk, "ok", 200},
    {Code::kInvalidArgument, "invalid_argument", 400},
    {Code::kNotFound, "not_found", 404},
    {Code::kAlreadyExists, "already_exists", 409},
    {Code::kFailedPrecondition, "failed_precondition", 412},
    {Code::kPermissionDenied, "permission_denied", 403},
    {Code::kUnauthenticated, "unauthenticated", 401},
    {Code::kUnavailable, "unavailable", 503},
    {Code::kDeadlineExceeded, "deadline_exceeded", 504},
    {Code::kResourceExhausted, "resource_exhausted", 413},
    {Code::kConflict, "conflict", 409},
    {Code::kInternal, "internal", 500},
}};
}  // namespace

std::string_view code_name(Code code) {
  for (const auto& c : kCodes)
    if (c.code == code) return c.name;
  return "internal";
}

int http_status(Code code) {
  for (const auto& c : kCodes)
    if (c.code == code) return c.http;
  return 500;
}

Code code_from_name(std::string_view name) {
  for (const auto& c : kCodes)
    if (c.name == name) return c.code;
  return Code::kInternal;
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace ferry
