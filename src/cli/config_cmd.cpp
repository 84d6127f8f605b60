// ferry validate: checks a ferry.yaml and prints every problem, one per line.
// (`ferry plan` belongs to the engine and registers itself elsewhere.)
#include <iostream>

#include "cli/commands.h"
#include "common/json.h"
#include "config/loader.h"
#include "store/store.h"

namespace ferry::cli {
namespace {

int run_validate(const std::string& path, bool json) {
  Result<std::string> text = read_config_file(path);
  if (!text.ok() && text.status().code() != Code::kResourceExhausted) {
    std::cerr << "ferry validate: " << text.status().message() << "\n";
    return 2;
  }
  ConfigCheck check;
  if (text.ok()) {
    check = check_config(*text, path);
    // The store module answers for server.store: valid only when this binary can open it.
    if (check.config) {
      if (Status s = validate_store_url(check.config->server.store); !s.ok()) {
        check.errors.push_back({path, 0, 0, "server.store", s.message()});
        check.config.reset();
      }
    }
  } else {
    std::string m = text.status().message();  // "<path>: the file is larger than …"
    if (m.rfind(path + ": ", 0) == 0) m = m.substr(path.size() + 2);
    check.errors.push_back({path, 0, 0, "", m});
  }
  if (json) {
    Json out = Json::object();
    out["ok"] = check.config.has_value();
    out["file"] = path;
    Json errors = Json::array();
    for (const auto& e : check.errors)
      errors.push_back({{"file", e.file},
                        {"line", e.line},
                        {"column", e.column},
                        {"field", e.field},
                        {"message", e.message}});
    out["errors"] = errors;
    if (check.config) {
      out["apps"] = check.config->apps.size();
      out["environments"] = check.config->environments.size();
    }
    std::cout << out.dump(2) << "\n";
  } else if (check.config) {
    std::cout << "ok: " << check.config->apps.size() << " apps, "
              << check.config->environments.size() << " environments\n";
  } else {
    for (const auto& e : check.errors) std::cout << e.to_string() << "\n";
  }
  return check.config ? 0 : 1;
}

}  // namespace

void register_config_commands(CLI::App& app, GlobalOptions& g) {
  auto* validate = app.add_subcommand("validate", "check a ferry.yaml and print every problem");
  auto file = std::make_shared<std::string>("ferry.yaml");
  validate->add_option("file", *file, "the file to check")->capture_default_str();
  validate->add_flag("--json", g.json, "print the result as JSON");
  validate->callback([file, &g] {
    int code = run_validate(*file, g.json);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace ferry::cli
