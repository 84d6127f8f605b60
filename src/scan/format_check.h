// Checks of a secret's decoded form for the few built-in rules where a regex alone cannot
// tell a credential from look-alike text: a Docker `auths` entry, an npm `_auth` value or an
// HTTP Basic header is base64 of "user:password", which a regex cannot decode.
#pragma once

#include <string>
#include <string_view>

#include "scan/rule.h"

namespace ferry::scan {

// Decodes standard base64 (with or without '=' padding) into `out`; false for anything else
// and for input over 4 KiB.
bool decode_base64(std::string_view in, std::string& out);

// True when `secret` passes `check`: kBase64UserPassword needs base64 that decodes to
// printable "user:password" with a non-empty password that is not a placeholder.
bool passes_format_check(FormatCheck check, std::string_view secret);

}  // namespace ferry::scan
