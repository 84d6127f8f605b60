// Realistic credential files, one per format that leaks in practice (issue 20), each with a
// clean twin of the same format (placeholders, references, locked accounts). Secrets are
// assembled at run time from pieces (tokens.h), so this file holds no credential-shaped
// string. credential_files_test.cpp asserts on them; with FERRY_SCAN_CORPUS_DIR set it also
// writes them out as the corpus of bench/scan/leaks.sh.
#pragma once

#include <string>
#include <vector>

#include "scan/tokens.h"

namespace ferry::scan::testing {

struct Expected {
  std::string rule;  // the rule that must report it
  std::string secret;
};

struct CredentialSample {
  std::string path;  // relative path in the corpus; some rules look at the file name
  std::string text;
  std::vector<Expected> expected;
  std::string clean;  // same format, nothing to report
};

// base64 (standard alphabet, padded).
inline std::string b64(std::string_view in) {
  static constexpr std::string_view kAlpha =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlpha[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlpha[(v >> 18) & 63];
    out += kAlpha[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlpha[(v >> 18) & 63];
    out += kAlpha[(v >> 12) & 63];
    out += kAlpha[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A password as people choose them: a word, digits and a symbol, mixed with random letters.
inline std::string human_password(unsigned seed) {
  static const char* kWords[] = {"Summer", "Dragon", "Monkey", "Falcon", "Winter", "Shadow"};
  return std::string(kWords[seed % 6]) + rnd(kDigits, 4, seed) + "!" + rnd(kAlnum, 3, seed + 50);
}

inline std::string hex(size_t n, unsigned seed) {
  return rnd(kHex, n, seed);
}

inline std::string uuid(unsigned seed) {
  return hex(8, seed) + "-" + hex(4, seed + 1) + "-4" + hex(3, seed + 2) + "-a" + hex(3, seed + 3) +
         "-" + hex(12, seed + 4);
}

inline std::string pem_block(std::string_view kind, unsigned seed, int lines = 8) {
  const std::string dashes = "-----";
  std::string body;
  for (int i = 0; i < lines; ++i) body += rnd(kB64, 64, seed + static_cast<unsigned>(i)) + "\n";
  return dashes + "BEGIN " + std::string(kind) + dashes + "\n" + body + dashes + "END " +
         std::string(kind) + dashes;
}

inline std::vector<CredentialSample> credential_samples() {
  std::vector<CredentialSample> v;
  const std::string pw = "pass" + std::string("word");  // the key word, kept out of literals
  auto add = [&](std::string path, std::string text, std::vector<Expected> e, std::string clean) {
    v.push_back({std::move(path), std::move(text), std::move(e), std::move(clean)});
  };

  {  // 1 .netrc, several machines, the Heroku CLI's entry among them
    const std::string p1 = human_password(1), p2 = uuid(2);
    add("home/.netrc",
        "machine ftp.internal.corp\n  login deploy\n  " + pw + " " + p1 +
            "\n\nmachine api.heroku.com\n  login dev@corp.io\n  " + pw + " " + p2 + "\n",
        {{"netrc-password", p1}, {"netrc-password", p2}},
        "machine ftp.internal.corp\n  login anonymous\n\nmachine mirror.corp.io login guest\n");
  }
  {  // 2 _netrc (Windows), one line
    const std::string p = rnd(kAlnum, 14, 3);
    add("win/_netrc", "machine git.corp.io login builder " + pw + " " + p + "\n",
        {{"netrc-password", p}}, "machine git.corp.io login builder\n");
  }
  {  // 3 .pgpass
    const std::string p = human_password(4), r = rnd(kAlnum, 20, 5);
    add("home/.pgpass",
        "# host:port:database:user:password\ndb1.corp.io:5432:orders:app:" + p +
            "\n*:*:*:replicator:" + r + "\n",
        {{"pgpass-password", p}, {"pgpass-password", r}}, "# host:port:database:user:password\n");
  }
  {  // 4 .git-credentials
    const std::string t = rnd(kAlnum, 32, 6);
    add("home/.git-credentials", "https://jdoe:" + t + "@git.corp.io\n", {{"url-password", t}},
        "https://git.corp.io\n");
  }
  {  // 5 .npmrc
    const std::string a = b64("ci:" + rnd(kAlnum, 16, 7)), t = uuid(8);
    add("home/.npmrc",
        "registry=https://npm.corp.io/\n_auth=" + a +
            "\nalways-auth=true\n//npm.corp.io/:_authToken=" + t + "\n",
        {{"npmrc-auth", a}, {"npmrc-auth", t}},
        "registry=https://npm.corp.io/\n//npm.corp.io/:_authToken=${NPM_TOKEN}\n");
  }
  {  // 6 .docker/config.json
    const std::string a = b64("robot$ci:" + rnd(kAlnum, 24, 9));
    add("home/.docker/config.json",
        "{\n\t\"auths\": {\n\t\t\"registry.corp.io\": {\n\t\t\t\"auth\": \"" + a +
            "\"\n\t\t}\n\t},\n\t\"HttpHeaders\": {\n\t\t\"User-Agent\": "
            "\"Docker-Client/20.10\"\n\t}\n}\n",
        {{"docker-config-auth", a}},
        "{\n\t\"auths\": {\n\t\t\"registry.corp.io\": {}\n\t},\n\t\"credsStore\": "
        "\"desktop\"\n}\n");
  }
  {  // 7 .dockercfg (the old format)
    const std::string a = b64("deployer:" + human_password(10));
    add("home/.dockercfg",
        "{\"https://index.docker.io/v1/\":{\"auth\":\"" + a + "\",\"email\":\"ops@corp.io\"}}\n",
        {{"docker-config-auth", a}},
        "{\"https://index.docker.io/v1/\":{\"email\":\"ops@corp.io\"}}\n");
  }
  {  // 8 .env
    const std::string p = human_password(11), k = rnd(kB64Url, 40, 12);
    add("app/.env",
        "APP_ENV=production\nDB_HOST=db1.corp.io\nDB_USER=app\nDB_PASSWORD=" + p +
            "\nSESSION_SECRET=" + k + "\n",
        {{"generic-password", p}, {"generic-config-secret", k}},
        "APP_ENV=production\nDB_PASSWORD=${DB_PASSWORD}\nSESSION_SECRET=changeme\n");
  }
  {  // 9 .envrc
    const std::string p = rnd(kAlnum, 18, 13);
    add("app/.envrc", "export PGHOST=db1.corp.io\nexport PGPASSWORD=" + p + "\nuse nix\n",
        {{"generic-password", p}},
        "export PGHOST=db1.corp.io\nexport PGPASSWORD=\"$(pass show db)\"\n");
  }
  {  // 10 wp-config.php
    const std::string p = human_password(14), salt = rnd(kAlnum + "!@#%^&*-_=+|;:<>?", 64, 15);
    add("www/wp-config.php",
        "<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\ndefine( 'DB_" +
            std::string("PASSWORD', '") + p +
            "' );\ndefine( 'DB_HOST', 'localhost' );\ndefine( 'AUTH_KEY',         '" + salt +
            "' );\n$table_prefix = 'wp_';\n",
        {{"php-define-secret", p}, {"php-define-secret", salt}},
        "<?php\ndefine( 'DB_PASSWORD', getenv('DB_PASSWORD') );\ndefine( 'AUTH_KEY', 'put your "
        "unique phrase here' );\n");
  }
  {  // 11 PHP array config
    const std::string p = human_password(16);
    add("www/config/database.php",
        "<?php\nreturn [\n    'default' => 'mysql',\n    'connections' => [\n        'mysql' => [\n"
        "            'host' => 'db1.corp.io',\n            'username' => 'shop',\n            '" +
            pw + "' => '" + p + "',\n        ],\n    ],\n];\n",
        {{"generic-password", p}},
        "<?php\nreturn ['mysql' => ['username' => 'shop', '" + pw + "' => env('DB_PASSWORD')]];\n");
  }
  {  // 12 PHP variables (old-style includes)
    const std::string p = human_password(17);
    add("www/inc/settings.inc.php",
        "<?php\n$db_host = 'localhost';\n$db_user = 'forum';\n$db_pass = '" + p + "';\n",
        {{"generic-password", p}}, "<?php\n$db_user = 'forum';\n$db_pass = $_ENV['DB_PASS'];\n");
  }
  {  // 13 Rails secrets.yml
    const std::string k = hex(128, 18);
    add("rails/config/secrets.yml",
        "development:\n  secret_key_base: <%= ENV[\"SECRET_KEY_BASE\"] %>\n\nproduction:\n  "
        "secret_key_base: " +
            k + "\n",
        {{"generic-config-secret", k}},
        "production:\n  secret_key_base: <%= ENV[\"SECRET_KEY_BASE\"] %>\n");
  }
  {  // 14 Rails master.key
    const std::string k = hex(32, 19);
    add("rails/config/master.key", k + "\n", {{"rails-master-key", k}},
        "");  // an empty master.key is not a leak
  }
  {  // 15 Django settings.py
    const std::string k = rnd(kAlnum + "!@#$%^&*(-_=+)", 50, 20), p = human_password(21);
    add("django/mysite/settings.py",
        "import os\n\nDEBUG = False\nSECRET_KEY = '" + k +
            "'\n\nDATABASES = {\n    'default': {\n        'ENGINE': "
            "'django.db.backends.postgresql',\n"
            "        'NAME': 'mysite',\n        'USER': 'mysite',\n        '" +
            "PASSWORD': '" + p + "',\n    }\n}\n",
        {{"generic-secret-assignment", k}, {"generic-password", p}},
        "import os\nSECRET_KEY = os.environ['DJANGO_SECRET_KEY']\nDATABASES = {'default': {'" +
            std::string("PASSWORD': os.environ.get('DB_PASSWORD')}}\n"));
  }
  {  // 16 .htpasswd with md5-crypt (apr1), bcrypt and {SHA} hashes
    const std::string h1 = "$apr1$" + rnd(kAlnum, 8, 22) + "$" + rnd(kAlnum + "./", 22, 23);
    const std::string h2 = "$2y$10$" + rnd(kAlnum + "./", 53, 24);
    const std::string h3 = "{SHA}" + rnd(kB64, 27, 25) + "=";
    add("www/.htpasswd", "admin:" + h1 + "\nstaging:" + h2 + "\nold:" + h3 + "\n",
        {{"password-hash", h1}, {"password-hash", h2}, {"password-hash", h3}},
        "# managed by puppet\n");
  }
  {  // 17 /etc/shadow
    const std::string h = "$6$" + rnd(kAlnum, 16, 26) + "$" + rnd(kAlnum + "./", 86, 27);
    const std::string y = "$y$j9T$" + rnd(kAlnum + "./", 22, 28) + "$" + rnd(kAlnum + "./", 43, 29);
    add("etc/shadow",
        "root:" + h + ":19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nalice:" + y +
            ":19500:0:99999:7:::\n",
        {{"password-hash", h}, {"password-hash", y}},
        "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nalice:!:19500:0:99999:7:::\n");
  }
  {  // 18 SQL dump: phpass, bcrypt and unsalted MD5
    const std::string h1 = "$P$B" + rnd(kAlnum + "./", 30, 30);
    const std::string h2 = "$2b$12$" + rnd(kAlnum + "./", 53, 31);
    const std::string h3 = hex(32, 32);
    add("backup/dump.sql",
        "-- MySQL dump 10.13\nDROP TABLE IF EXISTS `wp_users`;\nCREATE TABLE `wp_users` (`ID` "
        "bigint, `user_login` varchar(60), `user_pass` varchar(255));\nINSERT INTO `wp_users` "
        "VALUES (1,'admin','" +
            h1 + "');\nINSERT INTO `accounts` VALUES (2,'ops','" + h2 +
            "');\nINSERT INTO `members` VALUES (3,'bob','" + h3 + "','bob@corp.io');\n",
        {{"password-hash", h1}, {"password-hash", h2}, {"sql-dump-password-hash", h3}},
        "-- MySQL dump 10.13\nCREATE TABLE `wp_users` (`ID` bigint, `user_pass` varchar(255));\n"
        "INSERT INTO `posts` VALUES (1,'" +
            hex(32, 33) + "','hello');\n");
  }
  {  // 19 .s3cfg
    const std::string a = std::string("AK") + "IA" + rnd(kB32, 16, 34), s = rnd(kB64, 40, 35);
    add("home/.s3cfg",
        "[default]\naccess_key = " + a + "\nhost_base = s3.amazonaws.com\nsecret_key = " + s +
            "\nuse_https = True\n",
        {{"aws-access-key-id", a}, {"generic-config-secret", s}},
        "[default]\naccess_key =\nsecret_key =\nhost_base = s3.amazonaws.com\n");
  }
  {  // 20 ~/.aws/credentials
    const std::string a = std::string("AK") + "IA" + rnd(kB32, 16, 36), s = rnd(kB64, 40, 37);
    add("home/.aws/credentials",
        "[default]\naws_access_key_id = " + a + "\naws_secret_access_key = " + s + "\n",
        {{"aws-access-key-id", a}, {"aws-secret-access-key", s}},
        "[default]\ncredential_process = /usr/local/bin/aws-vault exec default --json\n");
  }
  {  // 21 ~/.aws/config: a key of unusual length (copied with a character too many)
    const std::string s = rnd(kB64, 41, 38);
    add("home/.aws/config",
        "[profile legacy]\nregion = eu-west-1\naws_secret_access_key=" + s + "\noutput = json\n",
        {{"aws-secret-access-key", s}}, "[profile legacy]\nregion = eu-west-1\noutput = json\n");
  }
  {  // 22 FileZilla sitemanager.xml (base64 Pass)
    const std::string p = b64(human_password(39));
    add("home/.config/filezilla/sitemanager.xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FileZilla3>\n  <Servers>\n    <Server>\n"
        "      <Host>ftp.corp.io</Host>\n      <Port>21</Port>\n      <User>web</User>\n"
        "      <Pass encoding=\"base64\">" +
            p + "</Pass>\n    </Server>\n  </Servers>\n</FileZilla3>\n",
        {{"xml-password-element", p}},
        "<?xml version=\"1.0\"?>\n<FileZilla3>\n  <Servers>\n    <Server>\n      "
        "<Host>ftp.corp.io</Host>\n      <User>web</User>\n    </Server>\n  "
        "</Servers>\n</FileZilla3>\n");
  }
  {  // 23 FileZilla recentservers.xml (plain Pass)
    const std::string p = human_password(40);
    add("home/.config/filezilla/recentservers.xml",
        "<?xml version=\"1.0\"?>\n<FileZilla3>\n <RecentServers>\n  <Server>\n   "
        "<Host>10.0.4.12</Host>\n   <User>root</User>\n   <Pass>" +
            p + "</Pass>\n  </Server>\n </RecentServers>\n</FileZilla3>\n",
        {{"xml-password-element", p}},
        "<?xml version=\"1.0\"?>\n<FileZilla3>\n <RecentServers>\n  <Server>\n   "
        "<Host>10.0.4.12</Host>\n   <Logontype>2</Logontype>\n  </Server>\n "
        "</RecentServers>\n</FileZilla3>\n");
  }
  {  // 24 Sublime SFTP sftp-config.json
    const std::string p = human_password(41);
    add("project/sftp-config.json",
        "{\n    \"type\": \"sftp\",\n    \"upload_on_save\": true,\n    \"host\": "
        "\"web1.corp.io\",\n"
        "    \"user\": \"deploy\",\n    \"" +
            pw + "\": \"" + p + "\",\n    \"remote_path\": \"/var/www/site/\"\n}\n",
        {{"generic-password", p}},
        "{\n    \"type\": \"sftp\",\n    \"host\": \"web1.corp.io\",\n    \"user\": \"deploy\",\n"
        "    \"ssh_key_file\": \"~/.ssh/id_rsa\"\n}\n");
  }
  {  // 25 Atom remote-ftp .ftpconfig
    const std::string p = human_password(42);
    add("project/.ftpconfig",
        "{\n  \"protocol\": \"ftp\",\n  \"host\": \"ftp.corp.io\",\n  \"port\": 21,\n  \"user\": "
        "\"site\",\n  \"pass\": \"" +
            p + "\",\n  \"remote\": \"/\"\n}\n",
        {{"generic-password", p}},
        "{\n  \"protocol\": \"ftp\",\n  \"host\": \"ftp.corp.io\",\n  \"user\": \"site\",\n  "
        "\"pass\": \"\",\n  \"promptForPass\": true\n}\n");
  }
  {  // 26 .remote-sync.json
    const std::string p = human_password(43);
    add("project/.remote-sync.json",
        "{\n  \"transport\": \"scp\",\n  \"hostname\": \"web2.corp.io\",\n  \"username\": "
        "\"www\",\n"
        "  \"" +
            pw + "\": \"" + p + "\",\n  \"target\": \"/srv/site\"\n}\n",
        {{"generic-password", p}},
        "{\n  \"transport\": \"scp\",\n  \"hostname\": \"web2.corp.io\",\n  \"keyfile\": "
        "\"~/.ssh/id_ed25519\"\n}\n");
  }
  {  // 27 .vscode/sftp.json
    const std::string p = human_password(44);
    add("project/.vscode/sftp.json",
        "{\n    \"name\": \"staging\",\n    \"host\": \"stage.corp.io\",\n    \"protocol\": "
        "\"sftp\",\n    \"username\": \"stage\",\n    \"" +
            pw + "\": \"" + p + "\",\n    \"uploadOnSave\": true\n}\n",
        {{"generic-password", p}},
        "{\n    \"name\": \"staging\",\n    \"host\": \"stage.corp.io\",\n    \"privateKeyPath\": "
        "\"~/.ssh/id_rsa\"\n}\n");
  }
  {  // 28 deployment-config.json
    const std::string p = human_password(45);
    add("project/deployment-config.json",
        "{\n  \"deploy\": {\n    \"host\": \"10.1.1.5\",\n    \"user\": \"deployer\",\n    "
        "\"passphrase\": \"" +
            p + "\",\n    \"path\": \"/opt/app\"\n  }\n}\n",
        {{"generic-password", p}},
        "{\n  \"deploy\": {\n    \"host\": \"10.1.1.5\",\n    \"user\": \"deployer\",\n    "
        "\"passphrase\": \"<ask>\"\n  }\n}\n");
  }
  {  // 29 JetBrains WebServers.xml (the password attribute is scrambled, still a credential)
    const std::string p = hex(28, 46);
    add("project/.idea/webServers.xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project version=\"4\">\n  <component "
        "name=\"WebServers\">\n    <option name=\"servers\">\n      <webServer id=\"1\" "
        "name=\"prod\">\n        <fileTransfer host=\"ftp.corp.io\" port=\"21\" accessType=\"FTP\" "
        "username=\"web\" " +
            pw + "=\"" + p +
            "\" />\n      </webServer>\n    </option>\n  "
            "</component>\n</project>\n",
        {{"generic-password", p}},
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project version=\"4\">\n  <component "
        "name=\"WebServers\">\n    <option name=\"servers\">\n      <webServer id=\"1\" "
        "name=\"prod\">\n        <fileTransfer host=\"ftp.corp.io\" port=\"21\" "
        "accessType=\"SFTP\" keyPair=\"true\" />\n      </webServer>\n    </option>\n  "
        "</component>\n</project>\n");
  }
  {  // 30 DBeaver data-sources.json (password saved in plain text)
    const std::string p = human_password(47);
    add("home/.local/share/DBeaverData/workspace6/General/.dbeaver/data-sources.json",
        "{\n\t\"folders\": {},\n\t\"connections\": {\n\t\t\"postgres-jdbc-1\": "
        "{\n\t\t\t\"provider\": "
        "\"postgresql\",\n\t\t\t\"save-password\": true,\n\t\t\t\"configuration\": "
        "{\n\t\t\t\t\"host\": "
        "\"db1.corp.io\",\n\t\t\t\t\"user\": \"analyst\",\n\t\t\t\t\"" +
            pw + "\": \"" + p + "\"\n\t\t\t}\n\t\t}\n\t}\n}\n",
        {{"generic-password", p}},
        "{\n\t\"connections\": {\n\t\t\"postgres-jdbc-1\": {\n\t\t\t\"save-password\": false,\n"
        "\t\t\t\"configuration\": {\"host\": \"db1.corp.io\", \"user\": "
        "\"analyst\"}\n\t\t}\n\t}\n}\n");
  }
  {  // 31 Robomongo / Robo 3T
    const std::string p = human_password(48);
    add("home/.3T/robo-3t/1.4.4/robo3t.json",
        "{\n    \"connections\": [\n        {\n            \"connectionName\": \"prod\",\n"
        "            \"serverHost\": \"mongo1.corp.io\",\n            \"credentials\": [\n"
        "                {\n                    \"databaseName\": \"admin\",\n                    "
        "\"userName\": \"root\",\n                    \"userPassword\": \"" +
            p + "\"\n                }\n            ]\n        }\n    ]\n}\n",
        {{"generic-password", p}},
        "{\n    \"connections\": [\n        {\n            \"connectionName\": \"prod\",\n"
        "            \"serverHost\": \"mongo1.corp.io\",\n            \"credentials\": []\n        "
        "}\n    ]\n}\n");
  }
  {  // 32 PuTTY .ppk
    std::string lines;
    for (int i = 0; i < 14; ++i) lines += rnd(kB64, 64, 60 + static_cast<unsigned>(i)) + "\n";
    const std::string secret = lines.substr(0, lines.size() - 1);
    add("home/keys/server.ppk",
        "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key-20190101\n"
        "Public-Lines: 6\n" +
            rnd(kB64, 64, 80) + "\n" + rnd(kB64, 40, 81) + "\nPrivate-Lines: 14\n" + lines +
            "Private-MAC: " + hex(40, 82) + "\n",
        {{"putty-private-key", secret}},
        "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"rsa-key-20190101\"\n" + rnd(kB64, 64, 83) +
            "\n---- END SSH2 PUBLIC KEY ----\n");
  }
  {  // 33 Firefox logins.json
    const std::string p =
        "MDoEEPgAAAAAAAAAAAAAAAAAAAEwFAYIKoZIhvcNAwcECA" + rnd(kB64, 24, 84) + "==";
    add("home/.mozilla/firefox/abcd1234.default-release/logins.json",
        "{\"nextId\":3,\"logins\":[{\"id\":1,\"hostname\":\"https://intranet.corp.io\","
        "\"encryptedUsername\":\"MDoEEPgAAAAAAAAAAAAAAAAAAAEwFAYIKoZIhvcNAwcECB" +
            rnd(kB64, 16, 85) + "\",\n\"encryptedPassword\":\"" + p + "\",\"guid\":\"{" + uuid(86) +
            "}\",\"encType\":1,\"timesUsed\":4}]}\n",
        {{"firefox-saved-password", p}},
        "{\"nextId\":1,\"logins\":[],\"potentiallyVulnerablePasswords\":[]}\n");
  }
  {  // 34 irssi config
    const std::string p = human_password(87);
    add("home/.irssi/config",
        "servers = (\n  {\n    address = \"irc.libera.chat\";\n    chatnet = \"LiberaChat\";\n    "
        "port = \"6697\";\n    " +
            pw + " = \"" + p + "\";\n    use_tls = \"yes\";\n  }\n);\n",
        {{"generic-password", p}},
        "servers = (\n  {\n    address = \"irc.libera.chat\";\n    port = \"6697\";\n  }\n);\n");
  }
  {  // 35 .esmtprc
    const std::string p = human_password(88);
    add("home/.esmtprc",
        "identity me@corp.io\n  hostname smtp.corp.io:587\n  username \"me@corp.io\"\n  " + pw +
            " \"" + p + "\"\n  starttls required\n",
        {{"generic-password", p}},
        "identity me@corp.io\n  hostname smtp.corp.io:587\n  starttls required\n");
  }
  {  // 36 Ventrilo server ini
    const std::string p = rnd(kAlnum, 12, 89);
    add("srv/ventrilo_srv.ini",
        "[Server]\nName=Guild\nPhonetic=Guild\nAuth=1\nDuplicates=1\nAdminPassword=" + p +
            "\nSendBuffer=0\n",
        {{"generic-password", p}}, "[Server]\nName=Guild\nAuth=0\nAdminPassword=\n");
  }
  {  // 37 Heroku API key in a shell profile
    const std::string k = uuid(90);
    add("home/.bash_profile",
        "export PATH=$HOME/bin:$PATH\nexport HEROKU_API_KEY=" + k + "\nalias ll='ls -l'\n",
        {{"heroku-api-key", k}},
        "export PATH=$HOME/bin:$PATH\nexport HEROKU_API_KEY=$(heroku auth:token)\n");
  }
  {  // 38 doctl config.yaml
    const std::string t = std::string("dop") + "_v1_" + hex(64, 91);
    add("home/.config/doctl/config.yaml",
        "access-token: " + t + "\ncontext: default\noutput: text\n", {{"digitalocean-token", t}},
        "access-token: \"\"\ncontext: default\noutput: text\n");
  }
  {  // 39 SSH private key, PEM
    const std::string k = pem_block("RSA PRIVATE KEY", 92, 12);
    add("home/.ssh/id_rsa", k + "\n", {{"private-key", k}},
        "ssh-rsa " + rnd(kB64, 200, 93) + " me@laptop\n");
  }
  {  // 40 SSH private key, OpenSSH format
    const std::string k = pem_block("OPENSSH PRIVATE KEY", 94, 7);
    add("home/.ssh/id_ed25519", k + "\n", {{"private-key", k}},
        "ssh-ed25519 " + rnd(kB64, 68, 95) + " me@laptop\n");
  }
  {  // 41 SSH private key, encrypted PEM (Proc-Type header)
    const std::string dashes = "-----";
    const std::string k = dashes + "BEGIN EC PRIVATE KEY" + dashes +
                          "\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC," + hex(32, 96) +
                          "\n\n" + rnd(kB64, 64, 97) + "\n" + rnd(kB64, 64, 98) + "\n" +
                          rnd(kB64, 32, 99) + "\n" + dashes + "END EC PRIVATE KEY" + dashes;
    add("home/.ssh/id_ecdsa", k + "\n", {{"private-key", k}},
        "ecdsa-sha2-nistp256 " + rnd(kB64, 140, 100) + " me@laptop\n");
  }
  {  // 42 Spring application.properties
    const std::string p = human_password(101);
    add("app/src/main/resources/application.properties",
        "spring.datasource.url=jdbc:postgresql://db1.corp.io:5432/"
        "shop\nspring.datasource.username=shop\n"
        "spring.datasource." +
            pw + "=" + p + "\nserver.port=8080\n",
        {{"generic-password", p}},
        "spring.datasource.url=jdbc:postgresql://db1.corp.io:5432/shop\nspring.datasource." + pw +
            "=${DB_PASSWORD}\n");
  }
  {  // 43 Maven settings.xml (an XML element)
    const std::string p = human_password(102);
    add("home/.m2/settings.xml",
        "<settings>\n  <servers>\n    <server>\n      <id>corp-releases</id>\n      "
        "<username>ci</username>\n      <" +
            pw + ">" + p + "</" + pw + ">\n    </server>\n  </servers>\n</settings>\n",
        {{"xml-password-element", p}},
        "<settings>\n  <servers>\n    <server>\n      <id>corp-releases</id>\n      "
        "<username>ci</username>\n      <" +
            pw + ">${env.MAVEN_PASSWORD}</" + pw + ">\n    </server>\n  </servers>\n</settings>\n");
  }
  {  // 44 docker-compose.yml (YAML environment)
    const std::string p = human_password(103);
    add("app/docker-compose.yml",
        "services:\n  db:\n    image: mysql:8\n    environment:\n      MYSQL_ROOT_" +
            std::string("PASSWORD: ") + p + "\n      MYSQL_DATABASE: shop\n",
        {{"generic-password", p}},
        "services:\n  db:\n    image: mysql:8\n    environment:\n      MYSQL_ROOT_" +
            std::string("PASSWORD_FILE: /run/secrets/db_root\n"));
  }
  return v;
}

}  // namespace ferry::scan::testing
