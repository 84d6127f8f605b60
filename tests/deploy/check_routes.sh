#!/usr/bin/env bash
# Checks that deploy/alertmanager/alertmanager.yml sends each kind of ferry alert where
# the example says: pages to PagerDuty and Slack, warnings to Slack, info to the webhook.
set -u
cfg="$1"
rc=0
expect() {  # expect RECEIVERS LABEL=VALUE...
  local want="$1"; shift
  if ! out=$(amtool config routes test --config.file="$cfg" --verify.receivers="$want" "$@" 2>/dev/null); then
    echo "FAIL: alert {$*} went to '$out', expected '$want'"
    rc=1
  else
    echo "ok: {$*} -> $out"
  fi
}
expect ops-pagerduty,team-slack alertname=FerryErrorBudgetBurnFast severity=critical app=web env=production
expect ops-pagerduty,team-slack alertname=FerryDown severity=critical
expect team-slack alertname=FerryRollback severity=warning app=web env=staging reason=analysis_failed
expect ops-webhook alertname=FerryDeploymentsSlow severity=info app=web env=production
expect ops-webhook alertname=SomethingElse
exit $rc
