# The demo's configs: Prosody, ngIRCd and Portway, and the secrets they share.
# Sourced by demo/run, which sets ROOT, STATE, PORT, the JIDs and the demo user's number.

# Secrets are made once per demo folder and kept there (mode 600), so a client that saved
# the password still logs in next time.
load_secrets() {
    local file="$STATE/secrets.sh"
    if [ ! -f "$file" ]; then
        (umask 077 && python3 -c '
import secrets
for name in ("IRC_SECRET", "SMS_SECRET", "MAIL_SECRET", "HOOKS_SECRET", "PASSWORD",
             "HOOK_TOKEN", "TWILIO_AUTH_TOKEN"):
    print(f"{name}={secrets.token_urlsafe(18)}")
print("TWILIO_ACCOUNT_SID=AC" + secrets.token_hex(16))
' >"$file")
    fi
    # shellcheck source=/dev/null
    source "$file"
}

write_configs() {
    mkdir -p "$STATE/prosody/data" "$STATE/prosody/certs" "$STATE/ngircd"
    chmod 755 "$STATE" "$STATE/ngircd"
    cat >"$STATE/prosody/prosody.cfg.lua" <<LUA
-- Written by demo/run.
run_as_root = true
pidfile = "$STATE/prosody/prosody.pid"
data_path = "$STATE/prosody/data"
certificates = "$STATE/prosody/certs"
admins = { }
modules_enabled = { "roster"; "saslauth"; "disco"; "posix"; "ping"; "carbons"; "mam"; "private"; "pep" }
modules_disabled = { "s2s"; "s2s_auth_certs"; "dialback"; "tls" }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${PORT[DEMO_C2S_PORT]} }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
component_ports = { ${PORT[DEMO_COMPONENT_PORT]} }
component_interfaces = { "127.0.0.1" }
allow_unencrypted_plain_auth = true
c2s_require_encryption = false
authentication = "internal_hashed"
log = { { levels = { min = "info" }; to = "file"; filename = "$STATE/prosody/prosody.log" } }
VirtualHost "$DOMAIN"
Component "$IRC_JID"
    component_secret = "$IRC_SECRET"
Component "$SMS_JID"
    component_secret = "$SMS_SECRET"
Component "$MAIL_JID"
    component_secret = "$MAIL_SECRET"
Component "$HOOKS_JID"
    component_secret = "$HOOKS_SECRET"
LUA
    cat >"$STATE/ngircd/ngircd.conf" <<CONF
# Written by demo/run.
[Global]
    Name = $IRC_SERVER
    Info = Portway demo IRC server
    Listen = 127.0.0.1
    Ports = ${PORT[DEMO_IRC_PORT]}
    MotdPhrase = "Portway demo"
    PidFile =
    ServerUID = nobody
    ServerGID = nogroup
[Limits]
    MaxNickLength = 30
[Options]
    DNS = no
    Ident = no
    PAM = no
CONF
    (umask 077 && cat >"$STATE/portway.yaml") <<YAML
# Written by demo/run. It holds the component secrets: keep it private.
database: sqlite:///$STATE/portway.db
xmpp:
  host: 127.0.0.1
  port: ${PORT[DEMO_COMPONENT_PORT]}
http:
  listen: 127.0.0.1:${PORT[DEMO_HTTP_PORT]}
  public_url: http://127.0.0.1:${PORT[DEMO_HTTP_PORT]}
log_level: ${DEMO_LOG_LEVEL:-INFO}
admins: [demo@$DOMAIN]
allowed_domains: [$DOMAIN]
transports:
  irc:
    jid: $IRC_JID
    secret: $IRC_SECRET
    servers:
      $IRC_SERVER:
        host: 127.0.0.1
        port: ${PORT[DEMO_IRC_PORT]}
        tls: false
  sms:
    jid: $SMS_JID
    secret: $SMS_SECRET
    # the demo's Twilio simulator (demo/outside_world.py), not Twilio
    account_sid: $TWILIO_ACCOUNT_SID
    auth_token: $TWILIO_AUTH_TOKEN
    api_base_url: http://127.0.0.1:${PORT[DEMO_TWILIO_PORT]}
    default_region: US
  email:
    jid: $MAIL_JID
    secret: $MAIL_SECRET
    domain: $MAIL_JID
    smtp_listen: 127.0.0.1:${PORT[DEMO_SMTP_PORT]}
    # the demo's catch-all smarthost: it keeps every mail in $STATE/mailbox
    smarthost:
      host: 127.0.0.1
      port: ${PORT[DEMO_SMARTHOST_PORT]}
      starttls: false
  webhook:
    jid: $HOOKS_JID
    secret: $HOOKS_SECRET
    # the demo's hook endpoint is on loopback, which hooks may not reach by default
    allow_networks: [127.0.0.1/32]
    hooks:
      - name: demo
        owner: demo@$DOMAIN
        token: $HOOK_TOKEN
        deliver_to: [demo@$DOMAIN]
        url: http://127.0.0.1:${PORT[DEMO_HOOK_PORT]}/demo
YAML
    prosodyctl --config "$STATE/prosody/prosody.cfg.lua" register demo "$DOMAIN" "$PASSWORD" \
        >/dev/null
}
