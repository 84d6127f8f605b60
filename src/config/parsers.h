// Internal: one parser per section of ferry.yaml. Each fills its spec from a Field and
// records every problem in the Field's Context; none stops at the first error.
#pragma once

#include "config/context.h"
#include "core/spec.h"

namespace ferry::config {

// Upper bounds of duration settings are written in hours of milliseconds.
inline constexpr int kHour = 3'600'000;

// Limits on counts (documented in docs/configuration.md).
inline constexpr size_t kMaxApps = 200;
inline constexpr size_t kMaxEnvironments = 50;
inline constexpr size_t kMaxAgents = 100;
inline constexpr size_t kMaxLabels = 20;  // per agent
inline constexpr size_t kMaxSteps = 100;
inline constexpr size_t kMaxHooks = 20;
inline constexpr size_t kMaxWindows = 50;
inline constexpr size_t kMaxFreezes = 100;
inline constexpr size_t kMaxNotifications = 50;
inline constexpr size_t kMaxQueries = 20;

// "10MB", "512KB", "1GB" or a number of bytes (parse_top.cpp).
bool parse_byte_size(const std::string& text, int64_t& out);
// A Docker image reference: [host[:port]/]name[/name…][:tag][@sha256:<64 hex>], names in
// lower case, at most 255 characters (parse_app.cpp).
bool valid_image_ref(std::string_view ref);

void parse_server(const Field& f, ServerSpec& out);
void parse_agent(const Field& f, AgentSpec& out);
// An IP address to bind (apps.NAME.listen, agents.NAME.listen).
void parse_listen(const Field& f, std::string& out);
void parse_local_agent(const Field& f, const Config& c, LocalAgentSpec& out);
void parse_notification(const Field& f, NotificationSpec& out);
void parse_environment(const Field& f, EnvironmentSpec& out);
void parse_app(const Field& f, AppSpec& out);
void parse_run(const Field& f, RunSpec& out);
void parse_checks(const Field& f, ChecksSpec& out);
void parse_hooks(const Field& f, HooksSpec& out);
void parse_strategy(const Field& f, StrategySpec& out);
void parse_analysis(const Field& f, AnalysisSpec& out);
// apps.NAME.tls (reads the certificate files) and apps.NAME.access_log (parse_edge.cpp).
void parse_tls(const Field& f, uint16_t app_port, TlsSpec& out);
void parse_access_log(const Field& f, AccessLogSpec& out);
// apps.NAME.slo, apps.NAME.environments.ENV.slo and environments.NAME.slo_gate (parse_slo.cpp).
void parse_slo(const Field& f, std::optional<SloSpec>& out);
void parse_slo_gate(const Field& f, SloGateSpec& out);

// Checks between sections (names that refer to others, cycles, ports). `root` is the whole
// document, used to find where to point each error.
void cross_check(const Field& root, const Config& config);

}  // namespace ferry::config
