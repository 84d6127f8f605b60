// Helpers for the config tests: a minimal valid ferry.yaml and error lookups.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/loader.h"

namespace ferry::testing {

// A small valid config; tests append to it or replace parts of it.
inline const char* kMinimal = R"(version: 1
environments:
  staging: {}
  production:
    requires: [staging]
apps:
  web:
    port: 8080
    run:
      command: ["./server", "--port", "${PORT}"]
)";

// kMinimal with the app's body extended: appended lines start at line 11, indented as keys
// of apps.web.
inline std::string app_with(const std::string& extra) {
  return std::string(kMinimal) + extra;
}

inline std::vector<ConfigError> errors_of(const std::string& yaml) {
  return check_config(yaml, "ferry.yaml").errors;
}

inline std::string dump(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.to_string() + "\n";
  return out;
}

// The first error whose field is `field` and whose message contains `text`, or nullptr.
inline const ConfigError* find_error(const std::vector<ConfigError>& errors,
                                     const std::string& field, const std::string& text) {
  for (const auto& e : errors)
    if (e.field == field && e.message.find(text) != std::string::npos) return &e;
  return nullptr;
}

}  // namespace ferry::testing

// Expects an error at `field` whose message contains `text`, at line `line` (1-based).
#define EXPECT_CONFIG_ERROR(yaml_, field_, text_, line_)                                \
  do {                                                                                  \
    auto errs_ = ::ferry::testing::errors_of(yaml_);                                    \
    const auto* e_ = ::ferry::testing::find_error(errs_, field_, text_);                \
    ASSERT_NE(e_, nullptr) << "no error at " << (field_) << " containing \"" << (text_) \
                           << "\"; got:\n"                                              \
                           << ::ferry::testing::dump(errs_);                            \
    EXPECT_EQ(e_->line, line_) << e_->to_string();                                      \
    EXPECT_GT(e_->column, 0) << e_->to_string();                                        \
    EXPECT_EQ(e_->file, "ferry.yaml");                                                  \
  } while (0)
