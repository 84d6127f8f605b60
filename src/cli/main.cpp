// ferry: the command line. Each verb group lives in its own *_cmd.cpp file.
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"ferry: safe, fast, auditable releases of web services"};
  app.set_version_flag("--version", std::string("ferry ") + FERRY_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may come after the verb too
  ferry::cli::GlobalOptions g;
  if (const char* s = std::getenv("FERRY_SERVER")) g.server = s;
  if (const char* t = std::getenv("FERRY_TOKEN")) g.token = t;
  app.add_option("--server", g.server, "control-plane address (env FERRY_SERVER)");
  app.add_option("--token", g.token, "API token (env FERRY_TOKEN)");
  app.add_flag("--json", g.json, "print JSON instead of text");
  ferry::cli::register_config_commands(app, g);
  ferry::cli::register_scan_commands(app, g);
  ferry::cli::register_plan_commands(app, g);
  ferry::cli::register_deploy_commands(app, g);
  ferry::cli::register_server_commands(app, g);
  ferry::cli::register_agent_commands(app, g);
  ferry::cli::register_governance_commands(app, g);
  ferry::cli::register_pin_token_commands(app, g);
  ferry::cli::register_backup_commands(app, g);
  ferry::cli::register_diff_commands(app, g);

  ferry::cli::register_store_commands(app, g);
  ferry::cli::register_slo_commands(app, g);
  ferry::cli::register_chaos_commands(app, g);

  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a verb's own exit code: 1 "found something", 2 error
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return 0;
}
