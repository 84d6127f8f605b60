// environments.<name>: promotion requirements, agents, approvals, windows and freezes.
#include "config/parsers.h"
#include "config/values.h"

namespace ferry::config {
namespace {

void parse_timezone(const Field& f, std::string& out) {
  std::string tz;
  if (!f.get(tz, 128)) return;
  if (auto err = check_timezone(tz)) {
    f.error(*err);
    return;
  }
  out = tz;
}

void parse_window(const Field& f, WindowSpec& out) {
  if (!f.expect_map({"days", "start", "end", "timezone"})) return;
  Field days = f.child("days");
  if (days.present()) {
    std::vector<std::string> parts;
    if (days.get_string_list(parts, 7)) {
      std::string joined;
      for (const auto& p : parts) joined += (joined.empty() ? "" : ",") + p;
      auto r = parse_days(joined);
      if (auto* e = std::get_if<std::string>(&r))
        days.error(*e);
      else
        out.days = std::get<std::vector<int>>(r);
    }
  } else {
    out.days = {0, 1, 2, 3, 4, 5, 6};
  }
  bool times_ok = true;
  for (auto [key, dest] : {std::pair{"start", &out.start_minute}, {"end", &out.end_minute}}) {
    Field t = f.child(key);
    std::string s;
    if (!t.present()) continue;
    if (!t.get(s, 16)) {
      times_ok = false;
      continue;
    }
    auto r = parse_clock(s);
    if (auto* e = std::get_if<std::string>(&r)) {
      t.error(*e);
      times_ok = false;
    } else {
      *dest = std::get<int>(r);
    }
  }
  if (times_ok && out.start_minute >= out.end_minute)
    f.child("end").error(describe(f.child("end").node()) + " is not after the start " +
                         describe(f.child("start").node()) +
                         ": end must be after start on the same day; for a window across "
                         "midnight use two windows");
  parse_timezone(f.child("timezone"), out.timezone);
}

void parse_freeze(const Field& f, FreezeSpec& out) {
  if (!f.expect_map({"from", "to", "timezone", "reason"})) return;
  std::string from_key, to_key;
  for (auto [key, dest, end, sort_key] :
       {std::tuple{"from", &out.from, false, &from_key}, {"to", &out.to, true, &to_key}}) {
    Field d = f.required(key);
    std::string s;
    if (!d.get(s, 32)) continue;
    auto r = parse_date_time(s, end);
    if (auto* e = std::get_if<std::string>(&r)) {
      d.error(*e);
      continue;
    }
    *dest = s;
    *sort_key = std::get<DateKey>(r).key;
  }
  if (!from_key.empty() && !to_key.empty() && to_key < from_key)
    f.child("to").error("the freeze ends (" + out.to + ") before it starts (" + out.from + ")");
  parse_timezone(f.child("timezone"), out.timezone);
  f.child("reason").get(out.reason, 1024);
}

}  // namespace

void parse_environment(const Field& f, EnvironmentSpec& out) {
  if (!f.present()) return;  // `staging:` with nothing: all defaults
  if (!f.expect_map({"requires", "agents", "approvals", "approval_ttl", "auto_deploy", "windows",
                     "freezes", "scan", "agent_timeout", "on_agent_loss", "min_available",
                     "max_per_agent", "spread_by", "slo_gate", "chaos"}))
    return;
  // Game days (`ferry chaos`): refused unless `allowed`.
  if (std::string chaos; f.child("chaos").get_enum(chaos, {"allowed", "refused"}))
    out.chaos_allowed = chaos == "allowed";
  parse_slo_gate(f.child("slo_gate"), out.slo_gate);
  f.child("requires").get_string_list(out.requires_envs, kMaxEnvironments);
  f.child("agents").get_string_list(out.agents, kMaxAgents);
  f.child("approvals").get_int(out.approvals, 0, 10);
  f.child("approval_ttl").get_duration_ms(out.approval_ttl_ms, 60'000, 7 * 86'400'000);
  f.child("auto_deploy").get_bool(out.auto_deploy);
  f.child("scan").get_enum(out.scan, {"required", "optional"});
  f.child("agent_timeout").get_duration_ms(out.agent_timeout_ms, 1'000, 3'600'000);
  f.child("on_agent_loss").get_enum(out.on_agent_loss, {"pause", "rollback", "continue"});
  f.child("min_available").get_int(out.min_available, 1, kMaxAgents);
  f.child("max_per_agent").get_int(out.max_per_agent, 1, 100);
  // A label name as in agents.NAME.labels (checked against the agents in cross_check).
  if (Field sb = f.child("spread_by");
      sb.present() && sb.get(out.spread_by, 63) &&
      (out.spread_by.empty() ||
       out.spread_by.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") !=
           std::string::npos)) {
    sb.error(describe(sb.node()) +
             " is not a label name: 1-63 lowercase letters, digits, '-' or '_'");
    out.spread_by.clear();
  }
  for (const Field& w : f.child("windows").items(kMaxWindows)) {
    WindowSpec spec;
    parse_window(w, spec);
    out.windows.push_back(std::move(spec));
  }
  for (const Field& fr : f.child("freezes").items(kMaxFreezes)) {
    FreezeSpec spec;
    parse_freeze(fr, spec);
    out.freezes.push_back(std::move(spec));
  }
}

}  // namespace ferry::config
