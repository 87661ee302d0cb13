"""``docmill serve``: the chat API (and the web app, when built) on one port;
``docmill tenants create NAME``: a tenant and its API key."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from docmill.cli.app import HomeOption, JsonOption, app
from docmill.errors import DocmillError

tenants_app = typer.Typer(help="tenants of the chat API and their API keys", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")


def default_web_dir() -> Path | None:
    """The web app's build: shipped inside the package, or ``frontend/dist`` of a checkout."""
    import docmill

    package = Path(docmill.__file__).resolve().parent
    for candidate in (package / "web", package.parents[1] / "frontend" / "dist"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 = any free port")] = 8000,
    llm: Annotated[str | None, typer.Option("--llm", help="local | openai:URL | sagemaker:ENDPOINT (env DOCMILL_LLM__SPEC)")] = None,
    web_dir: Annotated[Path | None, typer.Option("--web-dir", help="static web build to serve at / (default: the bundled one)")] = None,
    max_upload_mb: Annotated[float | None, typer.Option("--max-upload-mb", help="largest upload (413 beyond)")] = None,
    rate_limit: Annotated[int | None, typer.Option("--rate-limit", help="requests per tenant per minute (0 = none)")] = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Serve the chat API under /api (OpenAPI at /api/v1/openapi.json) and the web app at /."""
    import uvicorn

    from docmill.api.app import create_app
    from docmill.api.wiring import build_local_services
    from docmill.config import load_settings

    try:
        settings = load_settings(home=home)
        if max_upload_mb is not None:
            settings.api.max_upload_mb = max_upload_mb
        if rate_limit is not None:
            settings.api.rate_limit_per_minute = rate_limit
        web = web_dir if web_dir is not None else default_web_dir()
        if web is not None and not (web / "index.html").is_file():
            raise DocmillError(f"--web-dir {web}: no index.html there")
        services = build_local_services(settings, llm_spec=llm, web_dir=web)
    except DocmillError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # listening before the URL is printed: a client may connect at once
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    info = {"url": f"http://{shown}:{bound}", "api": f"http://{shown}:{bound}/api/v1", "home": str(settings.home),
            "web": str(web) if web else None}
    if json_output:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        sys.stdout.write(f"docmill API on {info['api']} (docs: {info['api']}/docs)"
                         + (f", web app on {info['url']}" if web else "") + "\n")
    sys.stdout.flush()
    # Keep-alive longer than clients' own idle expiry (httpx, browsers: 5-60 s), so the server
    # never closes a connection at the moment a client reuses it (a "connection reset").
    config = uvicorn.Config(create_app(services), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5, timeout_keep_alive=75)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        services.close()


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="tenant name: letters, digits, '.', '_', '-'")],
    rate_limit: Annotated[int | None, typer.Option("--rate-limit", help="requests per minute for this tenant")] = None,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Create a tenant and print its admin API key (shown once; only its hash is stored)."""
    from docmill.api.tenants import TenantRegistry
    from docmill.api.wiring import registry_path
    from docmill.config import load_settings

    try:
        registry = TenantRegistry(registry_path(load_settings(home=home).home))
        record, key = registry.create(name, rate_limit_per_minute=rate_limit)
    except DocmillError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if json_output:
        typer.echo(json.dumps({"tenant": record.name, "api_key": key}))
    else:
        typer.echo(f"tenant {record.name} created; API key (shown once): {key}")


@tenants_app.command("key")
def tenants_key(
    name: Annotated[str, typer.Argument(help="tenant")],
    user: Annotated[str | None, typer.Option("--user", help="register this user in the tenant and bind the key to it")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="the key may post notices")] = False,
    json_output: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Issue another API key for a tenant (a member key unless --admin)."""
    from docmill.api.tenants import TenantRegistry
    from docmill.api.wiring import registry_path
    from docmill.config import load_settings

    try:
        key = TenantRegistry(registry_path(load_settings(home=home).home)).issue_key(name, user=user, admin=admin)
    except DocmillError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"tenant": name, "user": user, "admin": admin, "api_key": key}) if json_output else key)


@tenants_app.command("list")
def tenants_list(json_output: JsonOption = False, home: HomeOption = None) -> None:
    """Tenants and their users (never keys)."""
    from docmill.api.tenants import TenantRegistry
    from docmill.api.wiring import registry_path
    from docmill.config import load_settings

    records = TenantRegistry(registry_path(load_settings(home=home).home)).tenants()
    if json_output:
        typer.echo(json.dumps({"tenants": [r.model_dump() for r in records]}))
    else:
        for r in records:
            typer.echo(f"{r.name}\tusers: {', '.join(r.users) or '-'}\tcreated {r.created}")
