// The built-in rule set. Every regex here is written from the providers' documented token
// formats (prefix, alphabet, length); none is copied from another scanner's rule file.
#include <cstdlib>
#include <iostream>

#include "scan/rule_parser.h"

namespace ferry::scan {
namespace {

constexpr std::string_view kDefaultRules = R"TOML(
title = "ferry default secret rules"

[[rules]]
id = "aws-access-key-id"
description = "AWS access key ID (AKIA long-term, ASIA temporary)"
regex = '''\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b'''
keywords = ["akia", "asia", "abia", "acca"]
entropy = 3.0

[[rules]]
id = "aws-secret-access-key"
description = "AWS secret access key assigned to an aws_secret_access_key-like name"
regex = '''(?i)\baws_?(?:secret)?_?(?:access)?_?key["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)'''
keywords = ["aws"]
entropy = 4.0

[[rules]]
id = "github-pat"
description = "GitHub personal access token (classic)"
regex = '''\b(ghp_[A-Za-z0-9]{36})\b'''
keywords = ["ghp_"]
entropy = 3.0

[[rules]]
id = "github-oauth-token"
description = "GitHub OAuth access token"
regex = '''\b(gho_[A-Za-z0-9]{36})\b'''
keywords = ["gho_"]
entropy = 3.0

[[rules]]
id = "github-app-token"
description = "GitHub App user-to-server or server-to-server token"
regex = '''\b((?:ghu|ghs)_[A-Za-z0-9]{36})\b'''
keywords = ["ghu_", "ghs_"]
entropy = 3.0

[[rules]]
id = "github-refresh-token"
description = "GitHub refresh token"
regex = '''\b(ghr_[A-Za-z0-9]{36,76})\b'''
keywords = ["ghr_"]
entropy = 3.0

[[rules]]
id = "github-fine-grained-pat"
description = "GitHub fine-grained personal access token"
regex = '''\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b'''
keywords = ["github_pat_"]
entropy = 3.0

[[rules]]
id = "gitlab-pat"
description = "GitLab personal, project or group access token"
regex = '''\b(glpat-[A-Za-z0-9_\-]{20,64})(?:[^A-Za-z0-9_\-]|$)'''
keywords = ["glpat-"]
entropy = 3.0

[[rules]]
id = "slack-token"
description = "Slack bot, user, app-level or configuration token"
regex = '''\b(xox[abposr]-[0-9]{6,16}-[A-Za-z0-9-]{8,200}|xapp-[0-9]-[A-Z0-9]{6,16}-[0-9]{6,16}-[a-f0-9]{32,80})\b'''
keywords = ["xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xapp-"]
entropy = 3.0

[[rules]]
id = "slack-webhook-url"
description = "Slack incoming webhook or workflow trigger URL"
regex = '''(hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9]{8,12}/[A-Za-z0-9]{8,12}/[A-Za-z0-9]{20,40})'''
keywords = ["hooks.slack.com"]

[[rules]]
id = "stripe-secret-key"
description = "Stripe secret or restricted API key"
regex = '''\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247})\b'''
keywords = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"]
entropy = 3.0

[[rules]]
id = "google-api-key"
description = "Google Cloud / Firebase API key"
regex = '''\b(AIza[A-Za-z0-9_\-]{35})(?:[^A-Za-z0-9_\-]|$)'''
keywords = ["aiza"]
entropy = 3.0

[[rules]]
id = "npm-access-token"
description = "npm access token"
regex = '''\b(npm_[A-Za-z0-9]{36})\b'''
keywords = ["npm_"]
entropy = 3.0

[[rules]]
id = "pypi-upload-token"
description = "PyPI API token (a macaroon issued by pypi.org)"
regex = '''\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,300})'''
keywords = ["pypi-ageichlwas5vcmc"]

[[rules]]
id = "sendgrid-api-key"
description = "SendGrid API key"
regex = '''\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)'''
keywords = ["sg."]
entropy = 3.0

[[rules]]
id = "twilio-api-key"
description = "Twilio API key SID with its secret nearby, or a standalone API key SID"
regex = '''\b(SK[0-9a-fA-F]{32})\b'''
keywords = ["sk"]
entropy = 3.0

[[rules]]
id = "openai-api-key"
description = "OpenAI API key (user, project, service account or admin)"
regex = '''\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,200}T3BlbkFJ[A-Za-z0-9_\-]{16,200})(?:[^A-Za-z0-9_\-]|$)'''
keywords = ["t3blbkfj"]

[[rules]]
id = "anthropic-api-key"
description = "Anthropic API or admin key"
regex = '''\b(sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,120})(?:[^A-Za-z0-9_\-]|$)'''
keywords = ["sk-ant-"]

[[rules]]
id = "private-key"
description = "Private key in a PEM block (RSA, EC, DSA, OpenSSH, PKCS#8, PGP)"
regex = '''(-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----[\s\S]{64,}?-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----)'''
keywords = ["-----begin"]

[[rules]]
id = "jwt"
description = "JSON Web Token (header and payload are base64url JSON objects)"
regex = '''\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})(?:[^A-Za-z0-9_\-.]|$)'''
keywords = ["eyj"]
entropy = 3.0

[[rules]]
id = "connection-string-password"
description = "Database or broker URL with an inline password"
regex = '''(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?)://([^:@/\s"'<>]{1,64}):([^@/\s"'<>]{3,128})@[^\s"'<>]{1,255}'''
secretGroup = 2
keywords = ["postgres", "mysql", "mariadb", "mongodb", "redis", "amqp"]
  [[rules.allowlists]]
  description = "local development databases"
  regexTarget = "match"
  regexes = ['''@(?:localhost|127\.0\.0\.1|\[::1\])(?:[:/]|$)''']
  [[rules.allowlists]]
  description = "well-known default and example passwords"
  regexes = ['''(?i)^(?:password|passw0rd|pass|passwd|secret|hunter2|admin|root|postgres|mysql|redis|guest|test|example|changeme|letmein|123456|user|dbpass|pw|pwd)$''']

[[rules]]
id = "generic-secret-assignment"
description = "A high-entropy string assigned to a name like password, secret, token or api_key"
regex = '''(?i)(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|client[_\-]?secret)[a-z0-9_\-]{0,20}["']?\s*(?::=|=>|=|:)\s*["']([^"'\s]{10,200})["']'''
keywords = ["password", "passwd", "pwd", "secret", "token", "key"]
entropy = 3.5
  [[rules.allowlists]]
  description = "test fixtures and obvious non-secrets"
  stopwords = ["test", "fake", "dummy", "sample", "mock", "fixture"]
  [[rules.allowlists]]
  description = "references to variables, files and environment"
  regexes = ['''^(?:\$|%|@|env[:.(]|process\.env|os\.environ|/|\./|\.\./|https?://)''',
             '''^[A-Za-z_.\-]+$''']

[[rules]]
id = "generic-env-secret"
description = "A high-entropy value of an environment variable named *PASSWORD, *SECRET, *TOKEN or *API_KEY"
regex = '''(?m)^\s*(?:export\s+)?[A-Z0-9_]{0,40}(?:PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY)[A-Z0-9_]{0,20}=([^\s"'#$`]{12,200})\s*$'''
keywords = ["password", "secret", "token", "api_key", "access_key"]
entropy = 4.0
  [[rules.allowlists]]
  stopwords = ["test", "fake", "dummy", "sample", "mock"]
  [[rules.allowlists]]
  description = "words without digits are names, not keys"
  regexes = ['''^[A-Za-z_.\-]+$''']

[allowlist]
description = "files that hold no secrets of this repository"
paths = ['''(?:^|/)(?:go\.sum|package-lock\.json|yarn\.lock|pnpm-lock\.yaml|Cargo\.lock|poetry\.lock)$''']
)TOML";

}  // namespace

std::string_view default_rules_toml() {
  return kDefaultRules;
}

const RuleSet& default_rules() {
  static const RuleSet kSet = [] {
    auto set = parse_rules(kDefaultRules, "<default rules>");
    if (!set) {
      // A broken built-in rule set is a bug in this file; the tests catch it.
      std::cerr << "ferry: " << set.status().to_string() << "\n";
      std::abort();
    }
    return std::move(*set);
  }();
  return kSet;
}

}  // namespace ferry::scan
