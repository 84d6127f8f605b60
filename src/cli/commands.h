// Each verb group of the ferry command registers itself here; main.cpp calls them all.
#pragma once

#include <CLI/CLI.hpp>

namespace ferry::cli {

// Options every verb that talks to the server shares.
struct GlobalOptions {
  std::string server = "127.0.0.1:7070";  // --server / FERRY_SERVER
  std::string token;                      // --token / FERRY_TOKEN
  bool json = false;                      // --json: machine-readable output
};

void register_config_commands(CLI::App& app, GlobalOptions& g);  // validate, plan
void register_server_commands(CLI::App& app, GlobalOptions& g);  // server, token
void register_scan_commands(CLI::App& app, GlobalOptions& g);    // scan
void register_deploy_commands(CLI::App& app, GlobalOptions& g);  // release, deploy, status, ...
void register_plan_commands(CLI::App& app, GlobalOptions& g);    // plan
void register_agent_commands(CLI::App& app, GlobalOptions& g);   // agent
void register_governance_commands(CLI::App& app,
                                  GlobalOptions& g);  // approve, override, secrets, audit
void register_pin_token_commands(CLI::App& app, GlobalOptions& g);  // pin-token
void register_backup_commands(CLI::App& app, GlobalOptions& g);     // backup
void register_diff_commands(CLI::App& app, GlobalOptions& g);       // diff
void register_store_commands(CLI::App& app, GlobalOptions& g);      // store check, store copy
void register_slo_commands(CLI::App& app, GlobalOptions& g);        // slo
void register_chaos_commands(CLI::App& app, GlobalOptions& g);      // chaos (game days)

}  // namespace ferry::cli
