"""Which URLs a connector may call: its configured service only, over TLS, never an internal address.

A connector's URLs come from configuration (``api_url``, Elasticsearch ``url``) or from a
credential (Drive's ``token_uri``), so a wrong or hostile value would otherwise make docmill
send a token to any host or read the instance metadata service. The rules, enforced by the
shared ``HttpClient`` for every connector:

- **https only.** Plain http is accepted for loopback hosts (``localhost``, 127.0.0.0/8,
  ``::1``) and only when the policy was built with ``allow_loopback=True``. That switch exists
  in code (tests build ``ConnectorRuntime(url_policy=UrlPolicy(allow_loopback=True))``); no
  configuration file or environment variable can turn it on.
- **The configured origins only.** Each client is pinned to the scheme, host and port of its
  service's base URLs; a request elsewhere, or a redirect to another origin, is refused (not
  followed), so credentials never reach another host.
- **No internal addresses, checked after DNS resolution** on the addresses actually dialled (so
  a public name resolving to 169.254.169.254 is refused as well): link-local (169.254.0.0/16,
  fe80::/10, including the EC2/ECS metadata endpoints and fd00:ec2::254), private (10/8,
  172.16/12, 192.168/16, fc00::/7), loopback (unless ``allow_loopback``), carrier-grade NAT,
  multicast, unspecified and reserved ranges. A service inside a VPC (a private Elasticsearch,
  say) is reached by listing its network in ``allowed_networks``; metadata addresses stay
  refused even then.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from docmill.errors import ConnectorUrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Origin = tuple[str, str, int]  # scheme, lower-case host, port

# The instance metadata services: refused even inside an explicitly allowed network.
_METADATA = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("fe80::/10"),
)
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def _default_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)]


def origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ConnectorUrlRefused(f"{url!r} has an invalid port") from exc
    return scheme, host, port


def _is_loopback_name(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class UrlPolicy:
    """The one rule set every connector's HTTP client enforces (see the module docstring)."""

    allow_loopback: bool = False
    allowed_networks: tuple[str, ...] = ()
    resolver: Callable[[str, int], list[str]] = field(default=_default_resolver, compare=False, repr=False)

    def check_url(self, url: str) -> Origin:
        """The URL's origin, or ``ConnectorUrlRefused`` when its scheme or host is not allowed."""
        scheme, host, port = origin_of(url)
        if not host:
            raise ConnectorUrlRefused(f"{url!r} has no host")
        secure = scheme == "https" or (scheme == "http" and self.allow_loopback and _is_loopback_name(host))
        if not secure:
            raise ConnectorUrlRefused(
                f"{url!r} refused: connectors call https URLs only (plain http only for loopback test endpoints)"
            )
        # An IP literal is refused before any connection is tried; a name (ValueError here) is
        # checked on the addresses it resolves to, at connection time.
        with contextlib.suppress(ValueError):
            self.check_address(host)
        return scheme, host, port

    def check_address(self, address: str) -> IPAddress:
        """``ValueError`` when ``address`` is not an IP literal; ``ConnectorUrlRefused`` when refused."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in _METADATA):
            raise ConnectorUrlRefused(f"address {ip} refused: link-local / instance metadata addresses are never called")
        if any(ip in ipaddress.ip_network(net) for net in self.allowed_networks):
            return ip
        if ip.is_loopback:
            if self.allow_loopback:
                return ip
            raise ConnectorUrlRefused(f"address {ip} refused: loopback addresses are not a connector's service")
        if ip.is_private or ip in _CGNAT or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise ConnectorUrlRefused(
                f"address {ip} refused: private or reserved network (list it in allowed_networks to reach a VPC service)"
            )
        return ip

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, all of them allowed, else ``ConnectorUrlRefused``.

        A name that resolves to both a public and an internal address is refused as a whole:
        which one a connection would use is not ours to choose.
        """
        try:
            self.check_address(host)
            return [host]
        except ValueError:
            pass
        addresses = self.resolver(host, port)
        for address in addresses:
            try:
                self.check_address(address)
            except ConnectorUrlRefused as exc:
                raise ConnectorUrlRefused(f"{host} resolves to a refused address: {exc}") from None
        return list(dict.fromkeys(addresses))


def origins(policy: UrlPolicy, urls: Iterable[str]) -> set[Origin]:
    return {policy.check_url(u) for u in urls}


def same_origin(url: str, allowed: Sequence[Origin] | set[Origin]) -> bool:
    return origin_of(url) in allowed
