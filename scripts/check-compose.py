"""Checks a compose file: YAML, the Compose Specification (through `docker compose config`), and the
cross-references a schema cannot see. Run it through scripts/check-compose.sh, which installs what it needs.

Every problem found is printed, one a line, as `FILE: WHERE: WHAT`; the exit status is 1 if there is any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

# Bind-mounted host paths (relative to the repository root) that a fresh clone lacks because the stack
# creates them; every other host path under the repository must exist.
CREATED_AT_RUN_TIME = {
    ".dev": "the `keys`, `audit-key` and `broker-secret` services write ./.dev on first run (git-ignored)"
}

# What `cargo xtask up` gives every subgraph natively (xtask/src/main.rs), plus INTERNAL_SECRET.
# MIGRATE_DATABASE_URL is not among them: here a one-shot `<subgraph> provision` service migrates.
SUBGRAPH_ENV = (
    "LISTEN_ADDR",
    "DATABASE_URL",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ROUTER_SECRET",
    "INTERNAL_SECRET",
    "REDIS_URL",
    "AMQP_URL",
)
# The issuer; every other subgraph loads its JWKS and looks API tokens up at its introspection endpoint.
ISSUER = "identity"
JWKS_PATH = "/.well-known/jwks.json"
# Secrets come from the environment, `${NAME:-fallback}`, with a fallback subgraphs accept.
SECRETS = ("ROUTER_SECRET", "INTERNAL_SECRET")
MIN_SECRET_BYTES = 32
SECRET_EXPR = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):-(?P<fallback>[^}]*)\}$")


class Problems:
    def __init__(self, file: str):
        self.file = file
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{self.file}: {where}: {what}")

    def exit_if_any(self) -> None:
        if self.items:
            print("\n".join(self.items), file=sys.stderr)
            print(f"check-compose: {len(self.items)} problem(s) in {self.file}", file=sys.stderr)
            sys.exit(1)


# ---------------------------------------------------------------------------------------------------------
# 1. YAML: duplicate keys are errors (PyYAML would silently keep the last one; the old broken compose.yaml
#    had two `identity` services), undefined aliases and merges of non-mappings are errors.


class StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in may be overridden; only keys written twice are duplicates
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key; SafeLoader reports it below
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first on line {first})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: Path, shown: str):
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.load(f, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)
    except yaml.YAMLError as e:
        print(f"{shown}: not valid YAML:\n{e}", file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------------------------------------------------
# 2. The Compose Specification, by the real parser.


def compose(binary: Path, root: Path, file: Path, *args: str) -> subprocess.CompletedProcess:
    # COMPOSE_FILE, COMPOSE_PROFILES and the like would change what is read: the file given is checked alone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        [str(binary), "--project-directory", str(root), "-f", str(file), "config", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


# ---------------------------------------------------------------------------------------------------------
# 3. Cross-references.


def depends_on_targets(service: dict) -> list[str]:
    deps = service.get("depends_on") or []
    if isinstance(deps, dict):
        return [str(k) for k in deps]
    if isinstance(deps, list):
        return [str(d) for d in deps]
    return []


def check_depends_on(raw: dict, problems: Problems) -> None:
    services = raw.get("services") if isinstance(raw, dict) else None
    if not isinstance(services, dict):
        return  # the schema check says why
    names = set(services)
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        for target in depends_on_targets(service):
            if target == name:
                problems.add(f"services.{name}.depends_on", "a service cannot depend on itself")
            elif target not in names:
                problems.add(
                    f"services.{name}.depends_on",
                    f"'{target}' is not a service (services: {', '.join(sorted(names))})",
                )


def shown_path(root: Path, path: Path) -> Path:
    return path.relative_to(root) if inside(root, path) else path


def inside(root: Path, path: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def check_paths(model: dict, root: Path, problems: Problems) -> None:
    for name, service in model["services"].items():
        build = service.get("build")
        if build:
            context = str(build.get("context", "."))
            if "://" in context or context.startswith("git@"):
                pass  # a remote context
            else:
                ctx = Path(context)
                if not inside(root, ctx):
                    problems.add(f"services.{name}.build.context", f"{ctx} is outside the repository")
                elif not ctx.is_dir():
                    problems.add(
                        f"services.{name}.build.context", f"{ctx.relative_to(root)}/ does not exist in the repository"
                    )
                elif not build.get("dockerfile_inline"):
                    dockerfile = ctx / build.get("dockerfile", "Dockerfile")
                    if not dockerfile.is_file():
                        problems.add(
                            f"services.{name}.build.dockerfile",
                            f"{shown_path(root, dockerfile)} does not exist",
                        )
        for i, volume in enumerate(service.get("volumes") or []):
            if volume.get("type") != "bind":
                continue
            source = Path(volume["source"])
            if not inside(root, source):
                continue  # a path on the host outside the repository (a socket, say): not ours to check
            rel = source.relative_to(root)
            if rel.parts and rel.parts[0] in CREATED_AT_RUN_TIME:
                continue
            if not source.exists():
                problems.add(
                    f"services.{name}.volumes[{i}]",
                    f"host path ./{rel} does not exist in the repository (Docker would create an empty directory "
                    f"there and mount it on {volume.get('target')})",
                )


def url_host_port(url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(url)
        return parts.hostname, parts.port
    except ValueError:
        return None, None


def listen_port(env: dict) -> int | None:
    addr = env.get("LISTEN_ADDR") or ""
    _, _, port = addr.rpartition(":")
    return int(port) if port.isdigit() else None


def check_subgraphs(model: dict, root: Path, problems: Problems) -> None:
    services: dict = model["services"]
    names = set(services)
    subgraphs = sorted(p.name for p in (root / "subgraphs").iterdir() if (p / "Cargo.toml").is_file())

    def runs(service: dict) -> tuple[str | None, str | None]:
        command = service.get("command") or []
        if isinstance(command, list) and len(command) >= 2 and command[0] in subgraphs:
            return command[0], command[1]
        return None, None

    serving: dict[str, list[str]] = {}  # subgraph -> services running `<subgraph> serve`
    provisioning: dict[str, list[str]] = {}
    for name, service in services.items():
        subgraph, verb = runs(service)
        if verb == "serve":
            serving.setdefault(subgraph, []).append(name)
        elif verb == "provision":
            provisioning.setdefault(subgraph, []).append(name)
            if not (service.get("environment") or {}).get("ADMIN_DATABASE_URL"):
                problems.add(f"services.{name}.environment", "ADMIN_DATABASE_URL (a superuser) is missing")

    # Every subgraph the supergraph routes to runs here.
    supergraph_file = root / "supergraph.yaml"
    routed = []
    if supergraph_file.is_file():
        routed = sorted((yaml.safe_load(supergraph_file.read_text()) or {}).get("subgraphs") or {})
        for subgraph in routed:
            if subgraph not in serving:
                problems.add("services", f"no service runs `{subgraph} serve`, yet supergraph.yaml routes to it")

    issuers = serving.get(ISSUER, [])
    issuer_env = (services[issuers[0]].get("environment") or {}) if issuers else {}
    issuer_port = listen_port(issuer_env)
    if routed and not issuers:
        problems.add("services", f"no service runs `{ISSUER} serve`: nothing issues tokens or serves the JWKS")

    shared: dict[str, tuple[str, str]] = {}  # setting -> (first service, value): the same everywhere
    for subgraph, serve_names in sorted(serving.items()):
        for name in serve_names:
            service = services[name]
            where = f"services.{name}"
            env = {k: ("" if v is None else str(v)) for k, v in (service.get("environment") or {}).items()}
            deps = service.get("depends_on") or {}

            for key in SUBGRAPH_ENV:
                if not env.get(key):
                    problems.add(
                        f"{where}.environment", f"{key} is missing (`cargo xtask up` gives it to every subgraph)"
                    )

            # DATABASE_URL: the app role of the subgraph's own database, on a service of this file.
            db = env.get("DATABASE_URL")
            if db:
                parts = urlsplit(db)
                if parts.username != f"cp_{subgraph}_app" or parts.path != f"/cp_{subgraph}":
                    problems.add(
                        f"{where}.environment.DATABASE_URL",
                        f"must connect as the app role cp_{subgraph}_app to cp_{subgraph} "
                        f"(got user {parts.username!r}, database {parts.path.lstrip('/')!r})",
                    )
            for key in ("DATABASE_URL", "REDIS_URL", "AMQP_URL"):
                value = env.get(key, "")
                if value.startswith("file:"):
                    # A configRef: the file must be mounted into the service.
                    path = value.removeprefix("file:")
                    mounted = [
                        v
                        for v in service.get("volumes") or []
                        if v.get("type") == "bind" and (path + "/").startswith(v.get("target", "").rstrip("/") + "/")
                    ]
                    if not mounted:
                        problems.add(f"{where}.environment.{key}", f"{value}: nothing is mounted at {path}")
                    continue
                if value.startswith("env:"):
                    continue
                host, _ = url_host_port(value)
                if value and host not in names:
                    problems.add(f"{where}.environment.{key}", f"host {host!r} is not a service of this file")
                # A password written into this file is readable by anyone who reads the repository.
                if urlsplit(value).password and key == "AMQP_URL":
                    problems.add(
                        f"{where}.environment.{key}",
                        "embeds the broker's password: give it by reference (file: or env:) instead",
                    )

            # Migrations: MIGRATE_DATABASE_URL, or a one-shot provision job that has finished first.
            if not env.get("MIGRATE_DATABASE_URL"):
                jobs = provisioning.get(subgraph, [])
                done = [j for j in jobs if (deps.get(j) or {}).get("condition") == "service_completed_successfully"]
                if not done:
                    problems.add(
                        f"{where}.depends_on",
                        f"nothing migrates cp_{subgraph}: depend on a `{subgraph} provision` service with "
                        f"condition service_completed_successfully"
                        + (f" ({', '.join(jobs)})" if jobs else " (there is none)")
                        + ", or set MIGRATE_DATABASE_URL",
                    )

            # Secrets: from the environment, with a fallback long enough, and two different secrets.
            for key in SECRETS:
                value = env.get(key)
                if not value:
                    continue
                m = SECRET_EXPR.match(value)
                if not m:
                    problems.add(
                        f"{where}.environment.{key}",
                        f"must come from the environment with a fallback, like ${{{key}:-dev-only-…}}; got {value!r}",
                    )
                elif m["name"] != key:
                    problems.add(f"{where}.environment.{key}", f"reads ${m['name']}; read ${key}")
                elif len(m["fallback"].encode()) < MIN_SECRET_BYTES:
                    problems.add(
                        f"{where}.environment.{key}",
                        f"the fallback {m['fallback']!r} has {len(m['fallback'].encode())} bytes; subgraphs refuse "
                        f"secrets shorter than {MIN_SECRET_BYTES}",
                    )
            if env.get("ROUTER_SECRET") and env.get("ROUTER_SECRET") == env.get("INTERNAL_SECRET"):
                problems.add(f"{where}.environment", "INTERNAL_SECRET must not be the router secret")
            else:
                fallbacks = [SECRET_EXPR.match(env.get(k) or "") for k in SECRETS]
                if all(fallbacks) and fallbacks[0]["fallback"] == fallbacks[1]["fallback"]:
                    problems.add(f"{where}.environment", "INTERNAL_SECRET's fallback must differ from ROUTER_SECRET's")

            for key in ("JWT_ISSUER", "JWT_AUDIENCE", "ROUTER_SECRET", "INTERNAL_SECRET"):
                if key not in env:
                    continue
                if key not in shared:
                    shared[key] = (name, env[key])
                elif shared[key][1] != env[key]:
                    problems.add(
                        f"{where}.environment.{key}",
                        f"{env[key]!r} differs from {shared[key][0]}'s {shared[key][1]!r}; all subgraphs share it",
                    )

            if subgraph == ISSUER:
                if not env.get("SIGNING_KEYS"):
                    problems.add(f"{where}.environment", "SIGNING_KEYS is missing (identity signs every token)")
                continue

            # Every subgraph but identity: identity's JWKS and introspection endpoint, once identity is up.
            for key, path in (("JWKS", JWKS_PATH), ("IDENTITY_URL", "")):
                value = env.get(key)
                if not value:
                    problems.add(
                        f"{where}.environment",
                        f"{key} is missing (every subgraph but identity needs it: "
                        f"{key}=http://{issuers[0] if issuers else ISSUER}:{issuer_port or 4001}{path})",
                    )
                    continue
                host, port = url_host_port(value)
                if value.startswith(("http://", "https://")):
                    if host not in issuers:
                        problems.add(
                            f"{where}.environment.{key}",
                            f"{value} is not identity's service ({', '.join(issuers) or 'none'})",
                        )
                    elif issuer_port and port != issuer_port:
                        problems.add(f"{where}.environment.{key}", f"{value}: identity listens on port {issuer_port}")
                    if path and urlsplit(value).path != path:
                        problems.add(f"{where}.environment.{key}", f"{value} is not identity's JWKS ({path})")
                elif key == "IDENTITY_URL":
                    problems.add(f"{where}.environment.{key}", f"{value!r} is not an http(s) URL")
            for issuer in issuers:
                condition = (deps.get(issuer) or {}).get("condition")
                if condition != "service_healthy":
                    problems.add(
                        f"{where}.depends_on",
                        f"must wait for {issuer} with condition service_healthy (it loads the JWKS at start-up"
                        + (f"; got {condition}" if condition else "")
                        + ")",
                    )
                if not services[issuer].get("healthcheck") or services[issuer]["healthcheck"].get("disable"):
                    problems.add(f"services.{issuer}", "needs a healthcheck: other subgraphs wait for it to be healthy")

    # The router sends the secret the subgraphs demand, and reaches each subgraph by its service name.
    router_secret = shared.get("ROUTER_SECRET", (None, None))[1]
    for name, service in services.items():
        if runs(service)[0]:
            continue
        env = service.get("environment") or {}
        if "ROUTER_SECRET" in env and router_secret is not None and env["ROUTER_SECRET"] != router_secret:
            problems.add(
                f"services.{name}.environment.ROUTER_SECRET",
                f"{env['ROUTER_SECRET']!r} is not what the subgraphs demand ({router_secret!r})",
            )
        config_path = env.get("ROUTER_CONFIG_FILE_PATH")
        if not config_path:
            continue
        mounts = [v for v in service.get("volumes") or [] if v.get("type") == "bind" and v.get("target") == config_path]
        if not mounts:
            problems.add(f"services.{name}.volumes", f"nothing is mounted at ROUTER_CONFIG_FILE_PATH {config_path}")
            continue
        source = Path(mounts[0]["source"])
        if not source.is_file():
            continue  # reported by check_paths
        overrides = ((yaml.safe_load(source.read_text()) or {}).get("override_subgraph_urls") or {}).get(
            "subgraphs"
        ) or {}
        shown = shown_path(root, source)
        for subgraph in routed:
            url = (overrides.get(subgraph) or {}).get("url")
            if not url:
                problems.add(
                    f"services.{name}",
                    f"{shown} does not override {subgraph}'s routing URL (in a container 127.0.0.1 is the router)",
                )
                continue
            host, port = url_host_port(url)
            if host not in serving.get(subgraph, []):
                problems.add(
                    f"services.{name}", f"{shown}: {subgraph} at {url}, but {host!r} does not run `{subgraph} serve`"
                )
            elif port != listen_port(services[host].get("environment") or {}):
                problems.add(f"services.{name}", f"{shown}: {subgraph} at {url}, but {host} listens on another port")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="the repository root")
    parser.add_argument("--docker-compose", type=Path, required=True, help="the docker compose binary")
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    root = args.root.resolve()
    file = args.file.resolve()
    try:
        shown = str(file.relative_to(Path.cwd()))
    except ValueError:
        shown = str(file)
    problems = Problems(shown)

    # 1. YAML, with aliases and merges resolved.
    raw = load_yaml(file, shown)
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict):
        problems.add("services", "a compose file is a mapping with a `services` mapping")
        problems.exit_if_any()
    check_depends_on(raw, problems)

    # 2. The Compose Specification and the model's consistency, by Docker Compose itself.
    checked = compose(args.docker_compose, root, file, "--quiet")
    if checked.returncode != 0:
        problems.add("Compose Specification", f"`docker compose config` refuses it: {checked.stderr.strip()}")
    elif checked.stderr.strip():
        # Warnings (an unset variable without a fallback, an obsolete key) are problems too.
        warnings = []
        for line in checked.stderr.strip().splitlines():
            m = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
            warning = m[1].replace('\\"', '"') if m else line.strip()
            if warning not in warnings:
                warnings.append(warning)
        for warning in warnings:
            problems.add("docker compose config", warning)
    problems.exit_if_any()

    rendered = compose(args.docker_compose, root, file, "--no-interpolate", "--format", "json")
    if rendered.returncode != 0:
        problems.add(
            "Compose Specification", f"`docker compose config --no-interpolate` refuses it: {rendered.stderr.strip()}"
        )
        problems.exit_if_any()
    model = json.loads(rendered.stdout)

    # 3. What the schema cannot see.
    check_paths(model, root, problems)
    check_subgraphs(model, root, problems)
    problems.exit_if_any()
    print(
        f"{shown}: OK — {len(model['services'])} services; the Compose Specification "
        f"(docker compose config), depends_on, build contexts, host paths, subgraph settings and secrets all check out"
    )


if __name__ == "__main__":
    main()
