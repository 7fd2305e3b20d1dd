"""A throwaway IRC network with TLS, a server password and SASL: InspIRCd 3 + Atheme.

ngIRCd (tests/support/ngircd.py) has neither SASL nor, in Debian, TLS we can point at our own
certificate, so the gateway's TLS, PASS and SASL PLAIN code is tested against this pair:
InspIRCd for the client side (ssl_gnutls, sasl), Atheme linked to it as services, holding
the accounts that SASL logs in to. Both are Debian packages (inspircd, atheme-services).

One InspIRCd listens on several loopback ports, one per situation a test needs:

- ``plain_port``: no TLS, for the raw IRC clients that stand for people on IRC;
- ``tls_port``: TLS with a certificate signed by the test CA;
- ``self_signed_port``: TLS with a self-signed certificate no trust store knows;
- ``locked_port``: TLS (CA-signed) that lets in only clients giving ``server_password``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from .certs import Certificates
from .irc_client import RawIrcClient
from .ports import free_port, wait_for_ports
from .process import ServerProcess, ServerStartError, tail

INSPIRCD = "/usr/sbin/inspircd"
ATHEME = "/usr/bin/atheme-services"
START_TIMEOUT = 15.0
SERVICES_NAME = "services.localhost"


class Inspircd(ServerProcess):
    """InspIRCd 3 in the foreground, as root (``--runasroot``), on 127.0.0.1 only."""

    name = "inspircd"

    def __init__(
        self,
        workdir: Path,
        certs: Certificates,
        *,
        server_name: str = "irc.localhost",
        server_password: str = "server-s3cret",
        link_password: str = "link-s3cret",
    ) -> None:
        super().__init__(workdir)
        self.certs = certs
        self.server_name = server_name
        self.server_password = server_password
        self.link_password = link_password
        #: WEBIRC password of the gateway (m_cgiirc), and an operator's (OPER tests …)
        self.webirc_password = "webirc-s3cret"
        self.oper_password = "oper-s3cret"
        self.host = "127.0.0.1"
        self.plain_port = free_port()
        self.tls_port = free_port()
        self.self_signed_port = free_port()
        self.locked_port = free_port()
        self.link_port = free_port()
        self.config_path = self.workdir / "inspircd.conf"
        self.log_path = self.workdir / "ircd.log"

    @property
    def port(self) -> int:
        """The plain port, so that code written for ngIRCd (host, port) connects here too."""
        return self.plain_port

    def config_text(self) -> str:
        """Render inspircd.conf; public so a failing test can print it."""
        w = self.workdir
        open_ports = f"{self.plain_port},{self.tls_port},{self.self_signed_port}"
        # No flood limits: the tests measure the gateway, not the server's anti-flood.
        limits = (
            'timeout="60" pingfreq="120" hardsendq="1M" softsendq="65536" recvq="65536" '
            'threshold="1000000" commandrate="1000000" fakelag="no" localmax="1000" '
            'globalmax="1000" useident="no" resolvehostnames="no" limit="1000"'
        )
        return f"""\
<config format="xml">
# Written by tests/support/inspircd.py for one test; do not edit.
<server name="{self.server_name}" description="Portway TLS/SASL test server"
        network="PortwayTest" id="1PW">
<admin name="tests" nick="tests" email="tests@localhost">
<module name="ssl_gnutls">
<module name="cap">
<module name="sasl">
<module name="services_account">
<module name="spanningtree">
<module name="sslinfo">
# IRCv3, as a network that offers it (tests/e2e/test_irc_v3.py); clients opt in with CAP.
<module name="ircv3">
<module name="ircv3_accounttag">
<module name="ircv3_batch">
<module name="ircv3_capnotify">
<module name="ircv3_chghost">
<module name="ircv3_ctctags">
<module name="ircv3_echomessage">
<module name="ircv3_invitenotify">
<module name="ircv3_msgid">
<module name="ircv3_servertime">
<module name="namesx">
<module name="uhnames">
<module name="chghost">
<module name="cgiirc">
# Channel mode +H replays recent lines to joiners in a BATCH (test_irc_v3_more.py).
<module name="chanhistory">
<chanhistory maxlines="50">
<ircv3 accountnotify="yes" awaynotify="yes" extendedjoin="yes">
<cgihost type="webirc" password="{self.webirc_password}" mask="*@127.0.0.1">
<class name="tests" commands="*" privs="*" usermodes="*" chanmodes="*">
<type name="TestOper" classes="tests">
<oper name="tests" password="{self.oper_password}" host="*@127.0.0.1" type="TestOper">

<sslprofile name="signed" provider="gnutls" certfile="{self.certs.signed.cert}"
            keyfile="{self.certs.signed.key}" dhfile="" hash="sha256" requestclientcert="no">
<sslprofile name="self-signed" provider="gnutls" certfile="{self.certs.self_signed.cert}"
            keyfile="{self.certs.self_signed.key}" dhfile="" hash="sha256"
            requestclientcert="no">

<bind address="127.0.0.1" port="{self.plain_port}" type="clients">
<bind address="127.0.0.1" port="{self.tls_port}" type="clients" sslprofile="signed">
<bind address="127.0.0.1" port="{self.self_signed_port}" type="clients"
      sslprofile="self-signed">
<bind address="127.0.0.1" port="{self.locked_port}" type="clients" sslprofile="signed">
<bind address="127.0.0.1" port="{self.link_port}" type="servers">

# A class matches only if the client's PASS matches its password: a wrong or missing one
# on the locked port matches no class, and the server says "Access denied".
<connect name="locked" allow="127.0.0.1" port="{self.locked_port}"
         password="{self.server_password}" {limits}>
<connect name="open" allow="127.0.0.1" port="{open_ports}" {limits}>
# Users a WEBIRC gateway vouches for come from the addresses it gives (fd00::/8 here).
<connect name="webirc" allow="fd00::/8" port="{self.plain_port}" {limits}>

<link name="{SERVICES_NAME}" ipaddr="127.0.0.1" port="{self.link_port}"
      allowmask="127.0.0.1" sendpass="{self.link_password}" recvpass="{self.link_password}">
<uline server="{SERVICES_NAME}" silent="yes">
<sasl target="{SERVICES_NAME}">

<dns server="127.0.0.1" timeout="1">
<pid file="{w}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{self.log_path}">
<files motd="{w}/motd.txt">
<options prefixquit="Quit: " syntaxhints="no" casemapping="rfc1459">
<security hideserver="" userstats="Pu" flatlinks="no" hidesplits="no" hideulines="no"
          hidebans="no" maxtargets="20" announceinvites="all">
<limits maxnick="30">
"""

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start InspIRCd in the foreground and wait until every client port accepts."""
        (self.workdir / "motd.txt").write_text("Portway TLS/SASL test server\n")
        self.config_path.write_text(self.config_text())
        self._spawn([INSPIRCD, "--nofork", "--runasroot", f"--config={self.config_path}"])
        ports = [self.plain_port, self.tls_port, self.self_signed_port, self.locked_port]
        if not wait_for_ports(ports, timeout, alive=lambda: self.running):
            self.kill()
            raise ServerStartError(
                f"InspIRCd did not listen on {ports} within {timeout:.0f}s, config "
                f"{self.config_path}\n--- {self.output_path} ---\n{tail(self.output_path)}\n"
                f"--- {self.log_path} ---\n{tail(self.log_path)}"
            )


class Atheme(ServerProcess):
    """Atheme services linked to ``ircd``: NickServ (accounts) and SaslServ (SASL PLAIN)."""

    name = "atheme"

    def __init__(self, workdir: Path, ircd: Inspircd) -> None:
        super().__init__(workdir)
        self.ircd = ircd
        self.config_path = self.workdir / "atheme.conf"
        self.log_path = self.workdir / "atheme.log"

    def config_text(self) -> str:
        """Render atheme.conf: only the modules accounts and SASL PLAIN need."""
        modules = (
            "protocol/inspircd",
            "backend/opensex",
            "crypto/pbkdf2v2",
            "nickserv/main",
            "nickserv/identify",
            "nickserv/info",
            "nickserv/register",
            "saslserv/main",
            "saslserv/plain",
        )
        loads = "\n".join(f'loadmodule "modules/{module}";' for module in modules)
        return f"""\
/* Written by tests/support/inspircd.py for one test; do not edit. */
{loads}

pbkdf2v2 {{ }};

serverinfo {{
    name = "{SERVICES_NAME}";
    desc = "Portway test services";
    numeric = "00A";
    recontime = 1;
    netname = "PortwayTest";
    hidehostsuffix = "users.portway";
    adminname = "tests";
    adminemail = "tests@localhost";
    registeremail = "noreply@localhost";
    mta = "/bin/false";
    loglevel = {{ error; info; admin; network; }};
    maxlogins = 5;
    maxusers = 5;
    auth = none;
    casemapping = rfc1459;
}};

uplink "{self.ircd.server_name}" {{
    host = "127.0.0.1";
    password = "{self.ircd.link_password}";
    port = {self.ircd.link_port};
}};

nickserv {{
    nick = "NickServ";
    user = "NickServ";
    host = "{SERVICES_NAME}";
    real = "Nickname Services";
    maxnicks = 5;
    expire = 30;
}};

saslserv {{
    nick = "SaslServ";
    user = "SaslServ";
    host = "{SERVICES_NAME}";
    real = "SASL Authentication Agent";
}};

general {{
    helpchan = "#help";
    helpurl = "http://localhost";
    uflags = {{ hidemail; }};
    cflags = {{ verbose; }};
    flood_msgs = 0;
    flood_time = 10;
    kline_time = 7;
    commit_interval = 5;
    default_clone_allowed = 50;
    default_clone_warn = 40;
    uplink_sendq_limit = 1048576;
    language = "en";
    immune_level = immune;
}};

logfile "{self.log_path}" {{ error; info; admin; network; }};
"""

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Atheme in the foreground and wait until InspIRCd offers SASL (linked)."""
        self.config_path.write_text(self.config_text())
        self._spawn(
            [
                ATHEME,
                "-n",
                "-c",
                str(self.config_path),
                "-D",
                str(self.workdir),
                "-l",
                str(self.log_path),
                "-p",
                str(self.workdir / "atheme.pid"),
            ]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            if "sasl" in _cap_ls(self.ircd.host, self.ircd.plain_port):
                return
            time.sleep(0.1)
        state = "exited" if not self.running else "not linked (InspIRCd offers no SASL)"
        self.kill()
        raise ServerStartError(
            f"Atheme {state} within {timeout:.0f}s, config {self.config_path}\n"
            f"--- {self.output_path} ---\n{tail(self.output_path)}"
        )


def _cap_ls(host: str, port: int) -> str:
    """The capabilities a fresh client is offered (CAP LS), or "" if none came."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"CAP LS 302\r\n")
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return ""
    line = data.decode(errors="replace")
    return line if " CAP " in line else ""


class IrcNetwork:
    """InspIRCd plus Atheme, started and stopped together; accounts via NickServ."""

    def __init__(self, workdir: Path, certs: Certificates) -> None:
        self.ircd = Inspircd(workdir / "inspircd", certs)
        self.services = Atheme(workdir / "atheme", self.ircd)
        self.certs = certs

    @property
    def host(self) -> str:
        return self.ircd.host

    @property
    def port(self) -> int:
        return self.ircd.plain_port

    def start(self) -> None:
        self.ircd.start()
        try:
            self.services.start()
        except BaseException:
            self.ircd.stop()
            raise

    def stop(self) -> None:
        self.services.stop()
        self.ircd.stop()

    async def register_account(self, account: str, password: str) -> None:
        """Register a NickServ account as a person would: connect as it, REGISTER, quit."""
        async with RawIrcClient(self.host, self.port, account) as client:
            await client.privmsg("NickServ", f"REGISTER {password} {account}@example.org")
            await client.expect(rf"^:NickServ!\S+ NOTICE {account} :.*registered")


#: make_irc_network() -> IrcNetwork (the fixture in tests/conftest.py)
MakeIrcNetwork = Callable[[], IrcNetwork]
