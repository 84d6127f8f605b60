// The built-in rule set. Every regex here is written from the providers' documented token
// formats (prefix, alphabet, length); none is copied from another scanner's rule file.
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <utility>

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
description = "AWS secret access key or session token assigned to an aws_secret_access_key-like name"
regex = '''(?i)\baws_?(?:secret)?_?(?:access)?_?(?:key|session_?token)["']?\s*(?::=|=>|=|:)\s*["']?([A-Za-z0-9/+=]{20,1000})(?:[^A-Za-z0-9/+=]|$)'''
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
description = "Private key in a PEM block (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP) or an SSH2 (ssh.com) key file"
regex = '''(-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----[\s\S]{64,}?-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----|---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----[\s\S]{64,}?---- END SSH2 ENCRYPTED PRIVATE KEY ----)'''
keywords = ["-----begin", "---- begin ssh2"]

[[rules]]
id = "putty-private-key"
description = "PuTTY private key file (.ppk): the Private-Lines block"
regex = '''PuTTY-User-Key-File-\d+:[^\r\n]*(?:\r?\n[^\r\n]*){0,40}?\r?\nPrivate-Lines:[ \t]*\d+\r?\n([A-Za-z0-9+/=]{16,}(?:\r?\n[A-Za-z0-9+/=]+){0,200}?)\r?\nPrivate-MAC:'''
keywords = ["putty-user-key-file"]
entropy = 4.0

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
id = "url-password"
description = "URL with an inline user:password (git credentials, HTTP, FTP, SSH, mail, LDAP, proxies)"
regex = '''(?i)\b(?:https?|s?ftps?|ssh|git|svn|smtps?|imaps?|pop3s?|ldaps?|socks[45]h?|wss?|rsync|nntp|xmpp)://([^:@/\s"'<>]{1,64}):([^@/\s"'<>]{3,128})@[^\s"'<>]{1,255}'''
secretGroup = 2
keywords = ["://"]
  [[rules.allowlists]]
  description = "local hosts and documentation hosts"
  regexTarget = "match"
  regexes = ['''@(?:localhost|127\.0\.0\.1|\[::1\]|(?:[a-z0-9-]+\.)*example\.(?:com|org|net)|host|hostname|server|domain)(?:[:/]|$)''',
             '''(?i)://(?:user|username|login|name|me|you|foo|john|jane):''']
  [[rules.allowlists]]
  description = "well-known example passwords and URL templates"
  regexes = ['''(?i)^(?:password|passw0rd|pass|passwd|secret|hunter2|admin|root|guest|test|example|changeme|letmein|123456|user|pw|pwd|anonymous|pa55word|mypassword|mypass|foo|bar|baz|x|xxx)$''',
             '''^[%$:]''']

[[rules]]
id = "basic-auth-header"
description = "HTTP Basic Authorization header (base64 of user:password)"
regex = '''(?i)\bauthorization["']?\s*[:=]\s*["']?basic\s+([A-Za-z0-9+/]{8,1000}={0,2})'''
keywords = ["authorization"]

[[rules]]
id = "netrc-password"
description = "Password (or API token) in a .netrc / _netrc file (curl, git, Heroku CLI, ftp)"
path = '''(?:^|/)[._]?netrc$'''
regex = '''(?:^|\s)(?:password|passwd)[ \t]+(\S{3,200})'''
keywords = ["password", "passwd"]

[[rules]]
id = "pgpass-password"
description = "Password in a PostgreSQL password file (.pgpass, pgpass.conf)"
path = '''(?:^|/)(?:\.pgpass|pgpass\.conf)$'''
regex = '''(?m)^[^:#\s]+:(?:\d+|\*):[^:\s]+:[^:\s]+:(\S{3,200})$'''

[[rules]]
id = "npmrc-auth"
description = "npm registry credential in an .npmrc (_auth, _authToken, _password)"
regex = '''(?m)^[ \t]*(?:[^\s=]*:)?_(?:auth|authToken|password)[ \t]*=[ \t]*["']?([^\s"'#]{8,1000})'''
keywords = ["_auth", "_password"]
entropy = 3.2

[[rules]]
id = "docker-config-auth"
description = "Registry credential in a Docker config.json / .dockercfg (auths: base64 of user:password)"
regex = '''"auth"\s*:\s*"([A-Za-z0-9+/]{8,1000}={0,2})"'''
keywords = ["\"auth\""]

[[rules]]
id = "php-define-secret"
description = "PHP define() of a password, key, salt or token (wp-config.php and similar)"
regex = '''(?i)define\(\s*["'][a-z0-9_]{0,30}(?:password|passwd|pass|pwd|secret|key|salt|token)[a-z0-9_]{0,20}["']\s*,\s*(?:'([^'\r\n]{6,200})'|"([^"\r\n]{6,200})")'''
keywords = ["define"]
entropy = 2.5
  [[rules.allowlists]]
  description = "words, constants and references, not secrets"
  regexes = ['''^[A-Za-z_ \-]+$''', '''^[0-9]+$''', '''^(?:\$|%|@|getenv|env\()''']
  stopwords = ["test", "fake", "dummy", "sample", "mock", "unique phrase"]

[[rules]]
id = "rails-master-key"
description = "Rails master key (config/master.key, config/credentials/*.key)"
path = '''(?:^|/)config/(?:master|credentials/[A-Za-z0-9_\-]+)\.key$'''
regex = '''^([0-9a-f]{32})\s*$'''

[[rules]]
id = "password-hash"
description = "Password hash in crypt(3) or LDAP form (.htpasswd, /etc/shadow, SQL dumps): bcrypt, sha-crypt, md5-crypt, yescrypt, phpass, Argon2, {SHA}"
regex = '''(\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$(?:1|apr1|md5)\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}|\$[56]\$(?:rounds=\d{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43,86}|\$y\$[./A-Za-z0-9]{1,10}\$[./A-Za-z0-9]{1,86}\$[./A-Za-z0-9]{43}|\$[PH]\$[./A-Za-z0-9]{31}|\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}|\{S?SHA\}[A-Za-z0-9+/]{27,}={0,2})'''
keywords = ["$2a$", "$2b$", "$2x$", "$2y$", "$1$", "$apr1$", "$md5$", "$5$", "$6$", "$y$", "$p$", "$h$", "$argon2", "{sha}", "{ssha}"]
entropy = 3.0

[[rules]]
id = "sql-dump-password-hash"
description = "Hex password hash (MD5, SHA-1, SHA-256) in an SQL INSERT into a users-like table"
regex = '''(?i)insert\s+into\s+[`"\[]?[a-z0-9_.]{0,40}(?:user|member|account|admin|login|customer|author)s?[a-z0-9_]{0,20}[`"\]]?[^;]{0,1000}?'([a-f0-9]{32}|[a-f0-9]{40}|[a-f0-9]{64})''''
keywords = ["insert"]
entropy = 3.0

[[rules]]
id = "firefox-saved-password"
description = "Saved password in a Firefox logins.json (encrypted with a key kept beside it in key4.db)"
regex = '''"encryptedPassword"\s*:\s*"([A-Za-z0-9+/=]{20,1000})"'''
keywords = ["encryptedpassword"]

[[rules]]
id = "heroku-api-key"
description = "Heroku API key or token assigned to a Heroku-named setting"
regex = '''(?i)(?:heroku[a-z0-9_ .\-]{0,20}(?:key|token|password|secret|auth)["']?\s*(?::=|=>|=|:)\s*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b|\b(HRKU-[A-Za-z0-9_\-]{60})(?:[^A-Za-z0-9_\-]|$))'''
keywords = ["heroku", "hrku-"]

[[rules]]
id = "digitalocean-token"
description = "DigitalOcean personal access, OAuth or refresh token (doctl config)"
regex = '''\b(do[opr]_v1_[a-f0-9]{64})\b'''
keywords = ["dop_v1_", "doo_v1_", "dor_v1_"]
entropy = 3.0

[[rules]]
id = "xml-password-element"
description = "Password, secret or token as an XML element's text or appSettings value (FileZilla <Pass>, Maven <password>, <property name=\"...password\">, <add key=\"...Password\" value=...>)"
regex = '''(?i)(?:<(?:[a-z0-9_\-]+:)?[a-z0-9_.\-]{0,30}(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key)[a-z0-9_.\-]{0,20}(?:\s[^<>]{0,100})?>|<[a-z0-9_:.\-]+\s+(?:name|key)\s*=\s*"[a-z0-9_.\-]{0,40}(?:password|passwd|pwd|secret|token)[a-z0-9_.\-]{0,20}"[^<>]{0,100}>)([^<>\r\n(){};]{4,200})</|<add\s+key\s*=\s*"[a-z0-9_.\-]{0,40}(?:password|passwd|pwd|secret|token)[a-z0-9_.\-]{0,20}"\s+value\s*=\s*"([^"\r\n]{4,200})"'''
keywords = ["pass", "pwd", "secret", "token", "key"]
entropy = 2.5
  [[rules.allowlists]]
  description = "words, numbers and references, not secrets"
  regexes = ['''^[A-Za-z_ \-]+$''', '''^[0-9]+$''', '''^(?:\$|%|@|/|\./|\.\./|~/|https?://)''']
  stopwords = ["test", "fake", "dummy", "sample", "mock"]

[[rules]]
id = "generic-password"
description = "A password assigned to a name like password, passwd, pass or pwd (ini, yaml, json, xml attributes, php, shell, properties)"
regex = '''(?im)(?:^[ \t]*pass(?:word|wd)?[ \t]+"([^"\s,;)+][^"\s]{5,199})"|(?:pass(?:word|wd|phrase)?|pwd)[a-z0-9_.\-]{0,20}["']?[ \t]*(?::=|=>|=|:)[ \t]*(?:"([^"\s,;)+][^"\s]{5,199})"|'([^'\s,;)+][^'\s]{5,199})'|([^\s"'<>;,()\[\]{}`:=&][^\s"'<>;,()\[\]{}`&]{5,199})[ \t]*(?:\r?\n|$)))'''
keywords = ["pass", "pwd"]
entropy = 2.5
  [[rules.allowlists]]
  description = "words, numbers, identifiers and references, not passwords"
  regexes = ['''^[A-Za-z_\-]+$''', '''^[0-9]+$''',
             '''^(?:\$|%|@|env[:.(]|process\.env|os\.environ|getenv|/|\./|\.\./|~/|https?://|file:)''',
             '''^[A-Za-z_][A-Za-z0-9_^]*(?:(?:\.|->|::)[A-Za-z_][A-Za-z0-9_]*)+$''',
             '''^[0-9][0-9.:_\-]*$''', '''^[A-Z][A-Z0-9]*_[A-Z0-9_]*$''']
  stopwords = ["test", "fake", "dummy", "sample", "mock", "fixture", "anonymous"]
  [[rules.allowlists]]
  description = "words that only start like pass: passing, passed, assignments"
  regexTarget = "match"
  regexes = ['''(?i)^[ \t]*(?:pass(?:ing|ign|ed|es|ive|age|enger|through|thru)|pwd_?(?:dir|len|path))''']

[[rules]]
id = "generic-secret-assignment"
description = "A high-entropy quoted string assigned to a name like secret, token, api_key or client_secret"
regex = '''(?i)(?:secret|token|api[_.\-]?key|apikey|access[_.\-]?key|auth[_.\-]?key|private[_.\-]?key|signing[_.\-]?key|encryption[_.\-]?key|master[_.\-]?key|credentials?)[a-z0-9_.\-]{0,20}["']?\s*(?::=|=>|=|:)\s*["']([^"'\s]{10,200})["']'''
keywords = ["secret", "token", "key", "credential"]
entropy = 3.5
  [[rules.allowlists]]
  description = "test fixtures and obvious non-secrets"
  stopwords = ["test", "fake", "dummy", "sample", "mock", "fixture"]
  [[rules.allowlists]]
  description = "references to variables, files and environment"
  regexes = ['''^(?:\$|%|@|env[:.(]|process\.env|os\.environ|/|\./|\.\./|https?://)''',
             '''^[A-Za-z_.\-]+$''']

[[rules]]
id = "generic-config-secret"
description = "A high-entropy unquoted value of a setting named *secret*, *token*, *api_key*, *access_key* (.env, ini, yaml, properties, shell)"
regex = '''(?im)^[ \t]*(?:export[ \t]+|set[ \t]+|-[ \t]+)?[a-z0-9_.\-]{0,40}(?:secret|token|api[_.\-]?key|apikey|access[_.\-]?key|auth[_.\-]?key|private[_.\-]?key|signing[_.\-]?key|encryption[_.\-]?key|master[_.\-]?key)[a-z0-9_.\-]{0,20}[ \t]*[:=][ \t]*([^\s"'#;,()\[\]{}`<>$&?]{12,200})[ \t]*\r?$'''
keywords = ["secret", "token", "key"]
entropy = 3.5
  [[rules.allowlists]]
  stopwords = ["test", "fake", "dummy", "sample", "mock", "fixture"]
  [[rules.allowlists]]
  description = "words without digits are names, not keys; paths and URLs are references"
  regexes = ['''^[A-Za-z_.\-]+$''', '''^(?:/|\./|\.\./|~/|https?://)''']

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
    auto set = parse_rules_deferred(kDefaultRules, "<default rules>");
    if (!set) {
      // A broken built-in rule set is a bug in this file; the tests catch it.
      std::cerr << "ferry: " << set.status().to_string() << "\n";
      std::abort();
    }
    // Decoded-form checks a TOML rule cannot express (format_check.h).
    for (Rule& r : set->rules) {
      if (r.id == "docker-config-auth" || r.id == "basic-auth-header") {
        r.format_check = FormatCheck::kBase64UserPassword;
      }
      // Cheaper candidate patterns (rule.h): a distinctive part of every match, ending on the
      // line where the match ends, in place of the whole regex. Wide repeats (openai, password
      // hashes) cost Vectorscan tenths of a second of compilation per process; a pattern
      // that starts at every line start (generic-config-secret) or before every '<' (xml)
      // slows every byte scanned: those two lose their leading part, so their candidates
      // stay as rare as the whole regex's (a looser pattern would leave RE2 thousands of
      // lines to confirm).
      static const std::pair<std::string_view, std::string_view> kPrefilters[] = {
          {"google-api-key", R"re(AIza[A-Za-z0-9_\-]{35})re"},
          {"openai-api-key", R"re(T3BlbkFJ)re"},
          // The regex less its trailing \b: the same bytes, ending at the same offset; the
          // trailing assertion made this one pattern ~9% of the whole Vectorscan pass.
          {"twilio-api-key", R"re(\bSK[0-9a-fA-F]{32})re"},
          {"password-hash",
           R"re(\$2[abxy]?\$\d{2}\$|\$(?:1|apr1|md5)\$|\$[56]\$|\$y\$|\$[PH]\$|\$argon2|\{S?SHA\})re"},
          {"heroku-api-key",
           R"re((?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|HRKU-)re"},
          {"xml-password-element",
           R"re((?i)(?:(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key)[a-z0-9_.\-]{0,20}(?:\s[^<>]{0,100})?>|(?:password|passwd|pwd|secret|token)[a-z0-9_.\-]{0,20}"[^<>]{0,100}>)([^<>\r\n(){};]{4,200})</|(?:password|passwd|pwd|secret|token)[a-z0-9_.\-]{0,20}"\s+value\s*=\s*"([^"\r\n]{4,200})")re"},
          {"generic-config-secret",
           R"re((?im)(?:secret|token|api[_.\-]?key|apikey|access[_.\-]?key|auth[_.\-]?key|private[_.\-]?key|signing[_.\-]?key|encryption[_.\-]?key|master[_.\-]?key)[a-z0-9_.\-]{0,20}[ \t]*[:=][ \t]*([^\s"'#;,()\[\]{}`<>$&?]{12,200})[ \t]*\r?$)re"},
      };
      for (const auto& [id, pattern] : kPrefilters) {
        if (r.id == id) r.prefilter = std::string(pattern);
      }
    }
    return std::move(*set);
  }();
  return kSet;
}

}  // namespace ferry::scan
