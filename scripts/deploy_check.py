#!/usr/bin/env python3
"""Checks the deployment files: Dockerfile, .dockerignore, compose.yaml and
deploy/kubernetes/. Run by scripts/deploy-check.sh (which makes its venv and
gives the environment scripts/test.sh exports); see that script for what is
checked. Prints one line per check and "deploy-check: N passed, N failed".
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
BIN = os.environ.get("TENANTRY_BIN", "")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

passed = 0
failed = 0


def log(message: str) -> None:
    print(f"deploy-check: {message}", file=sys.stderr, flush=True)


def check(name: str, fn: Callable[[], Any]) -> Any:
    """Runs one check: an exception (AssertionError with a message) fails it."""
    global passed, failed
    try:
        value = fn()
    except Exception as e:  # every failure is reported, then the next check runs
        failed += 1
        detail = str(e) or type(e).__name__
        log(f"FAIL: {name}\n" + "\n".join("    " + line for line in detail.splitlines()[:40]))
        return None
    passed += 1
    log(f"ok: {name}")
    return value


def run(argv: list[str], timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------
class Instruction:
    def __init__(self, stage: int, op: str, args: str, line: int) -> None:
        self.stage, self.op, self.args, self.line = stage, op, args, line

    def words(self) -> tuple[list[str], list[str]]:
        """(flags, arguments) of a shell- or JSON-form instruction."""
        text = self.args.strip()
        flags = []
        while text.startswith("--"):
            flag, _, text = text.partition(" ")
            flags.append(flag)
            text = text.strip()
        if text.startswith("["):
            return flags, json.loads(text)
        return flags, shlex.split(text)


def parse_dockerfile(path: Path) -> tuple[list[Instruction], list[str]]:
    """Instructions (continuations joined, comments dropped) and stage names."""
    instructions: list[Instruction] = []
    stages: list[str] = []
    stage = -1
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        op, _, args = text.partition(" ")
        op = op.upper()
        if op == "FROM":
            stage += 1
            parts = args.split()
            stages.append(parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(stage))
        instructions.append(Instruction(stage, op, args, start))
    return instructions, stages


class DockerIgnore:
    """.dockerignore as Docker reads it: patterns in order, `!` re-includes,
    the last match wins, a pattern matching a directory covers what is in it."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = pattern.strip("/")
            self.rules.append((negate, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            else:
                c = pattern[i]
                out += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
                i += 1
        return "^" + out + "$"

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for negate, rx in self.rules:
            if any(rx.match(p) for p in prefixes):
                result = not negate
        return result


def context_files(ignore: DockerIgnore) -> set[str]:
    """Repository files (tracked or not, as `docker build .` would send) in the context."""
    files = set()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if d not in (".git", "target")]
        for f in filenames:
            rel = f if rel_dir == "." else f"{rel_dir}/{f}"
            if not ignore.excluded(rel):
                files.add(rel)
    return files


def dockerfile_checks() -> dict[str, Any]:
    dockerfile = ROOT / "Dockerfile"
    instructions, stages = parse_dockerfile(dockerfile)
    ignore = DockerIgnore(ROOT / ".dockerignore")
    included = context_files(ignore)
    last = len(stages) - 1
    info: dict[str, Any] = {}

    hadolint = os.environ.get("HADOLINT")
    if hadolint:
        def lint() -> None:
            r = run([hadolint, "--no-color", str(dockerfile)])
            assert r.returncode == 0, r.stdout + r.stderr
        check("hadolint Dockerfile", lint)

    def stage_count() -> None:
        assert len(stages) >= 2, f"a multi-stage build is expected, found stages {stages}"
        froms = [i for i in instructions if i.op == "FROM"]
        assert froms[0].args.split()[0].startswith("rust:"), froms[0].args
        runtime_image = froms[-1].args.split()[0]
        assert runtime_image.startswith(("debian:12-slim", "gcr.io/distroless/cc")), runtime_image
    check("two stages: a rust builder, a debian:12-slim (or distroless cc) runtime", stage_count)

    copies = [i for i in instructions if i.op in ("COPY", "ADD")]

    def sources_exist() -> None:
        problems = []
        for ins in copies:
            flags, words = ins.words()
            if any(f.startswith("--from") for f in flags):
                continue
            for src in words[:-1]:
                src = src.rstrip("/").removeprefix("./")
                matches = [p for p in included if p == src or p.startswith(src + "/") or fnmatch.fnmatch(p, src)]
                if not (ROOT / src).exists() and not matches:
                    problems.append(f"line {ins.line}: {src} does not exist in the repository")
                elif not matches:
                    problems.append(f"line {ins.line}: {src} is excluded by .dockerignore")
        assert not problems, "\n".join(problems)
    check("every path the Dockerfile COPYs exists and is in the build context", sources_exist)

    def no_secrets_in_context() -> None:
        for path in (".tenantry/signing-key.pem", ".tenantry/context-key", "target/debug/tenantry",
                     "crates/api/target/x", "config/production.toml", ".git/config"):
            assert ignore.excluded(path) or path.startswith(".git/"), f".dockerignore lets {path} into the context"
    check(".dockerignore keeps .tenantry/, target/ and local config out", no_secrets_in_context)

    # The builder's file system as the COPY lines make it (WORKDIR-relative).
    ctx = Path(tempfile.mkdtemp(prefix="deploy-check-ctx."))
    info["ctx"] = ctx

    def emulate_builder() -> None:
        workdir = "/"
        for ins in instructions:
            if ins.stage != 0:
                continue
            if ins.op == "WORKDIR":
                workdir = ins.args.strip()
            if ins.op not in ("COPY", "ADD"):
                continue
            flags, words = ins.words()
            assert not any(f.startswith("--from") for f in flags), f"line {ins.line}: COPY --from in the builder"
            dest = words[-1]
            dest_abs = os.path.normpath(dest if dest.startswith("/") else os.path.join(workdir, dest))
            for src in words[:-1]:
                src = src.rstrip("/").removeprefix("./")
                for rel in sorted(included):
                    if rel == src:
                        target = dest_abs + "/" + os.path.basename(rel) if dest.endswith("/") else dest_abs
                    elif rel.startswith(src + "/"):
                        target = dest_abs + "/" + rel[len(src) + 1:]
                    else:
                        continue
                    assert target.startswith(workdir.rstrip("/") + "/"), f"{rel} lands outside WORKDIR at {target}"
                    out = ctx / os.path.relpath(target, workdir)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / rel, out)
        info["workdir"] = workdir
        # Not --offline: the lock lists crates for every platform (e.g. the
        # zip build dependency's nix), which a builder downloads and this
        # machine may never have; the registry is reachable, like the builder's.
        r = run(["cargo", "metadata", "--locked", "--format-version", "1",
                 "--manifest-path", str(ctx / "Cargo.toml")], timeout=300)
        assert r.returncode == 0, "cargo metadata --locked in the builder's copy failed:\n" + r.stderr[-2000:]
    check("the builder's copy is a complete workspace whose Cargo.lock is current (cargo metadata --locked)",
          emulate_builder)

    def build_inputs_copied() -> None:
        """Every repository file the binary's build reads: its dep-info
        (sources, include_str!/include_bytes! files) and what the build
        scripts watch (the SQL and policy files they embed)."""
        depinfo = TARGET / "debug" / "tenantry.d"
        assert depinfo.is_file(), f"{depinfo} is missing: build the binary first (scripts/test.sh does)"
        text = depinfo.read_text().replace("\\\n", " ")
        _, _, deps = text.partition(": ")
        needed: set[str] = set()

        def need(path: Path) -> None:
            """A file, or every file of a watched directory, inside the repository."""
            if not path.is_relative_to(ROOT):
                return
            if path.is_dir():
                needed.update(os.path.relpath(p, ROOT) for p in path.rglob("*") if p.is_file())
            elif path.exists():
                needed.add(os.path.relpath(path, ROOT))

        for dep in re.split(r"(?<!\\) ", deps.splitlines()[0] if deps else ""):
            dep = dep.replace("\\ ", " ").strip()
            if dep:
                need(Path(dep).resolve())
        meta = json.loads(run(["cargo", "metadata", "--offline", "--no-deps", "--format-version", "1"],
                              cwd=ROOT).stdout)
        package_dirs = {p["name"]: Path(p["manifest_path"]).parent for p in meta["packages"]}
        for name, pkg_dir in package_dirs.items():
            needed.add(os.path.relpath(pkg_dir / "Cargo.toml", ROOT))
            outputs = (TARGET / "debug" / "build").glob(f"{name}-*/output")
            for output in (o for o in outputs if re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}", o.parent.name)):
                for line in output.read_text().splitlines():
                    m = re.match(r"cargo::?rerun-if-changed=(.+)", line)
                    if not m:
                        continue
                    need((pkg_dir / m.group(1)).resolve())
        assert len(needed) > 20, f"too few build inputs found ({len(needed)}): is {depinfo} current?"
        missing = sorted(p for p in needed if not (ctx / p).is_file())
        assert not missing, "the image's build would miss these files (add them to the COPY lines and .dockerignore):\n" + "\n".join(missing)
        info["build_inputs"] = len(needed)
    check("every file the release build reads is copied into the builder", build_inputs_copied)

    # The runtime stage.
    runtime = [i for i in instructions if i.stage == last]
    env: dict[str, str] = {}
    for ins in runtime:
        if ins.op == "ENV":
            for word in shlex.split(ins.args):
                k, _, v = word.partition("=")
                env[k] = v
    info["env"] = env
    info["workdir_runtime"] = next((i.args.strip() for i in reversed(runtime) if i.op == "WORKDIR"), "/")

    def runtime_stage() -> None:
        user = [i.args.strip() for i in runtime if i.op == "USER"]
        assert user, "no USER in the runtime stage"
        uid = user[-1].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"USER {user[-1]}: a numeric non-root uid is expected (runAsNonRoot verifies it)"
        info["uid"] = int(uid)
        entry = [json.loads(i.args) for i in runtime if i.op == "ENTRYPOINT"]
        cmd = [json.loads(i.args) for i in runtime if i.op == "CMD"]
        assert entry and entry[-1] == ["tenantry"], f"ENTRYPOINT {entry}"
        assert cmd and cmd[-1] == ["serve"], f"CMD {cmd}"
        info["argv"] = entry[-1] + cmd[-1]
        copies = [i for i in runtime if i.op in ("COPY", "ADD")]
        for ins in copies:
            flags, words = ins.words()
            assert any(f.startswith("--from=") for f in flags), f"line {ins.line}: the runtime copies {words[:-1]} from the context"
        dests = [i.words()[1][-1] for i in copies]
        assert "/usr/local/bin/tenantry" in dests, f"the binary is not copied to /usr/local/bin/tenantry: {dests}"
        assert len(copies) == 1, f"the runtime stage holds more than the binary: {[i.args for i in copies]}"
        assert not any(i.op == "HEALTHCHECK" for i in runtime), "HEALTHCHECK without an HTTP client in the image"
    check("runtime: numeric non-root USER, only the binary, ENTRYPOINT [tenantry] CMD [serve]", runtime_stage)

    def runtime_env() -> None:
        assert env.get("TENANTRY__ENVIRONMENT") == "production", env
        assert env.get("TENANTRY__SERVER__HOST") == "0.0.0.0", "the service must listen on 0.0.0.0 in a container"
        exposed = set()
        for ins in runtime:
            if ins.op == "EXPOSE":
                exposed.update(int(p.split("/")[0]) for p in ins.args.split())
        wanted = {int(env["TENANTRY__SERVER__PORT"]), int(env["TENANTRY__METRICS__LISTEN"].rsplit(":", 1)[1])}
        assert exposed == wanted, f"EXPOSE {sorted(exposed)}, but the image's settings listen on {sorted(wanted)}"
    check("runtime ENV: production, 0.0.0.0, EXPOSE = the configured ports", runtime_env)
    return info


# ---------------------------------------------------------------------------
# CLI: every command the files run must parse
# ---------------------------------------------------------------------------
def parses(argv: list[str]) -> None:
    assert argv and argv[0] == "tenantry", f"runs {argv[:1]}, not the tenantry binary"
    r = run([BIN, *argv[1:], "--help"], timeout=30)
    assert r.returncode == 0, f"`{shlex.join(argv)} --help` exits {r.returncode}: {r.stderr.strip()}"


# ---------------------------------------------------------------------------
# compose.yaml
# ---------------------------------------------------------------------------
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    return INTERPOLATION.sub(lambda m: variables.get(m.group(1)) or (m.group(2) or ""), value)


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {str(k): str(v) for k, v in env.items()}


def compose_checks(docker: dict[str, Any]) -> dict[str, Any]:
    path = ROOT / "compose.yaml"
    tool = os.environ.get("CHECK_JSONSCHEMA")
    if tool:
        def schema() -> None:
            r = run([tool, "--builtin-schema", "vendor.compose-spec", str(path)])
            assert r.returncode == 0, r.stdout + r.stderr
        check("compose.yaml validates against the Compose specification's schema", schema)
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services", {})

    def structure() -> None:
        for name in ("postgres", "migrate", "tenantry", "sweep"):
            assert name in services, f"no service {name}"
        assert str(services["postgres"]["image"]).startswith("postgres:15"), services["postgres"]["image"]
        assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
        for name in ("tenantry", "sweep"):
            cond = services[name]["depends_on"]["migrate"]["condition"]
            assert cond == "service_completed_successfully", f"{name} depends on migrate with {cond}"
        for name in ("migrate", "tenantry", "sweep"):
            build = services[name].get("build")
            assert build in (".", {"context": "."}), f"{name} is not built from this repository's Dockerfile: {build}"
            owner = "TENANTRY__DATABASE__OWNER_URL" in compose_env(services[name])
            assert owner == (name == "migrate"), f"{name}: the owner's URL belongs to migrate only"
        for name, svc in services.items():
            for volume in svc.get("volumes", []):
                source = str(volume).split(":")[0]
                if source.startswith("."):
                    assert (ROOT / source).is_file(), f"{name} mounts {source}, which does not exist"
        ports = services["tenantry"].get("ports", [])
        container_ports = {int(str(p).rsplit(":", 1)[1]) for p in ports}
        assert container_ports == {int(docker["env"]["TENANTRY__SERVER__PORT"])}, f"tenantry publishes {ports}"
        mounts = [str(v).split(":") for v in services["tenantry"].get("volumes", [])]
        assert any(m[1] == docker["workdir_runtime"] for m in mounts if len(m) > 1), \
            f"the keys volume is not mounted on the image's WORKDIR {docker['workdir_runtime']} (development keys would be lost)"
    check("compose: postgres:15, migrate, tenantry and sweep in order; the owner's URL for migrate only", structure)

    def commands() -> None:
        for name in ("migrate", "tenantry", "sweep"):
            parses(["tenantry", *services[name]["command"]])
        parses(["tenantry", "token", "--admin"])  # the documented `docker compose exec`
    check("compose: every command is a real tenantry subcommand", commands)
    return {"services": services}


# ---------------------------------------------------------------------------
# deploy/kubernetes
# ---------------------------------------------------------------------------
def load_manifests() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(K8S.glob("*.yaml")):
        out[f.name] = [d for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def kubernetes_checks(docker: dict[str, Any]) -> dict[str, Any]:
    manifests = load_manifests()
    files = [K8S / f for f in manifests if f != "kustomization.yaml"]
    tool = os.environ.get("KUBERNETES_VALIDATE")
    if tool:
        for version in ("1.29.0", "1.37.0"):
            def validate(version: str = version) -> None:
                r = run([tool, "--strict", "--quiet", "-k", version, *map(str, files)])
                assert r.returncode == 0, r.stdout + r.stderr
            check(f"kubernetes-validate --strict (Kubernetes {version} schemas)", validate)

    docs = [d for f, ds in manifests.items() if f not in ("kustomization.yaml", "secret.example.yaml") for d in ds]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    example_secrets = {d["metadata"]["name"]: d.get("stringData", {}) for d in manifests.get("secret.example.yaml", [])}
    configmaps = {d["metadata"]["name"]: d["data"] for d in by_kind.get("ConfigMap", [])}

    def kustomization() -> None:
        k = manifests["kustomization.yaml"][0]
        listed = set(k["resources"])
        for r in listed:
            assert (K8S / r).is_file(), f"kustomization lists {r}, which does not exist"
        unlisted = {f for f in manifests if f not in ("kustomization.yaml", "secret.example.yaml")} - listed
        assert not unlisted, f"not in kustomization.yaml: {sorted(unlisted)}"
        assert "secret.example.yaml" not in listed, "the example Secret must not be applied"
        names = {i["name"] for i in k.get("images", [])}
        for d in docs:
            if d["kind"] in ("Deployment", "Job", "CronJob"):
                for c in pod_spec(d)["containers"]:
                    assert c["image"].split(":")[0] in names, f"{c['image']} is not in kustomization images"
    check("kubernetes: kustomization.yaml lists every manifest (not the example Secret)", kustomization)

    def kinds() -> None:
        for kind in ("Deployment", "Service", "Job", "CronJob", "PodDisruptionBudget", "ConfigMap"):
            assert kind in by_kind, f"no {kind}"
    check("kubernetes: Deployment, Service, migrate Job, sweep CronJob, PDB, ConfigMap", kinds)

    workloads = {d["kind"]: d for d in docs if d["kind"] in ("Deployment", "Job", "CronJob")}

    def hardening() -> None:
        for kind, d in workloads.items():
            spec = pod_spec(d)
            sc = spec.get("securityContext", {})
            assert sc.get("runAsNonRoot") is True, f"{kind}: runAsNonRoot"
            assert sc.get("runAsUser") == docker.get("uid"), f"{kind}: runAsUser {sc.get('runAsUser')} is not the image's USER {docker.get('uid')}"
            for c in spec["containers"]:
                csc = c.get("securityContext", {})
                assert csc.get("allowPrivilegeEscalation") is False, f"{kind}/{c['name']}: allowPrivilegeEscalation"
                assert csc.get("readOnlyRootFilesystem") is True, f"{kind}/{c['name']}: readOnlyRootFilesystem"
                assert "ALL" in csc.get("capabilities", {}).get("drop", []), f"{kind}/{c['name']}: capabilities"
                res = c.get("resources", {})
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(res.get(part, {})), f"{kind}/{c['name']}: resources.{part}"
    check("kubernetes: every pod non-root (the image's uid), read-only, no privileges, with resources", hardening)

    def probes() -> None:
        d = workloads["Deployment"]
        c = pod_spec(d)["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", c["readinessProbe"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", c["livenessProbe"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in c:
                assert c[probe]["httpGet"]["port"] in ports, f"{probe} probes an unnamed port"
        env = container_env_static(c, configmaps, docker["env"])
        assert ports["http"] == int(env["TENANTRY__SERVER__PORT"]), f"http port {ports['http']} vs {env['TENANTRY__SERVER__PORT']}"
        assert ports["metrics"] == int(env["TENANTRY__METRICS__LISTEN"].rsplit(":", 1)[1]), "metrics port"
        assert env["TENANTRY__SERVER__HOST"] == "0.0.0.0", "the pod must listen on 0.0.0.0"
        assert env.get("TENANTRY__ENVIRONMENT") == "production", "the Deployment must run in production"
        assert env.get("TENANTRY__RETENTION__ENABLED") == "false", "the CronJob sweeps; the replicas must not"
        grace = pod_spec(d)["terminationGracePeriodSeconds"]
        shutdown = int(env.get("TENANTRY__SERVER__SHUTDOWN_TIMEOUT", "30s").rstrip("s"))
        pause = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        assert shutdown + pause < grace, f"shutdown {shutdown}s + preStop {pause}s must end before the {grace}s grace period"
    check("kubernetes: readiness /readyz, liveness /healthz on the configured ports; graceful stop fits the grace period",
          probes)

    def references() -> None:
        labels = pod_labels(workloads["Deployment"])
        for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
            for d in by_kind.get(kind, []):
                sel = d["spec"]["selector"] if kind == "Service" else (
                    d["spec"]["selector"]["matchLabels"] if kind == "PodDisruptionBudget" else d["spec"]["podSelector"]["matchLabels"])
                assert sel.items() <= labels.items(), f"{kind} {d['metadata']['name']} selects {sel}, not the pods {labels}"
        names = {p["name"] for p in pod_spec(workloads["Deployment"])["containers"][0]["ports"]}
        for svc in by_kind["Service"]:
            for p in svc["spec"]["ports"]:
                assert p["targetPort"] in names, f"Service targetPort {p['targetPort']}"
        for d in by_kind.get("NetworkPolicy", []):
            for rule in d["spec"]["ingress"]:
                for p in rule.get("ports", []):
                    assert p["port"] in names, f"NetworkPolicy port {p['port']}"
        for kind, d in workloads.items():
            spec = pod_spec(d)
            for c in spec["containers"]:
                for ref in c.get("envFrom", []):
                    assert ref["configMapRef"]["name"] in configmaps, f"{kind}: no ConfigMap {ref}"
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in example_secrets.get(ref["name"], {}), f"{kind}: secret {ref['name']}/{ref['key']} is not in secret.example.yaml"
                owner = any(e["name"] == "TENANTRY__DATABASE__OWNER_URL" for e in c.get("env", []))
                assert owner == (kind == "Job"), f"{kind}: the owner's URL belongs to the migrate Job only"
            for v in spec.get("volumes", []):
                if "secret" in v:
                    s = v["secret"]
                    for item in s.get("items", []):
                        assert item["key"] in example_secrets.get(s["secretName"], {}), f"{kind}: secret {s['secretName']}/{item['key']}"
    check("kubernetes: selectors, ports, ConfigMap and Secret references resolve; owner URL in the Job only", references)

    def commands() -> None:
        expected = {"Deployment": ["tenantry", "serve"], "Job": ["tenantry", "migrate"],
                    "CronJob": ["tenantry", "sweep", "--once"]}
        for kind, d in workloads.items():
            c = pod_spec(d)["containers"][0]
            argv = c.get("command", docker["argv"][:1]) + c.get("args", [])
            assert argv == expected[kind], f"{kind} runs {argv}"
            parses(argv)
        parses(["tenantry", "token", "--admin"])  # the documented `kubectl exec`
    check("kubernetes: every command is a real tenantry subcommand", commands)
    return {"workloads": workloads, "configmaps": configmaps, "example_secrets": example_secrets}


def container_env_static(c: dict[str, Any], configmaps: dict[str, dict[str, str]], image_env: dict[str, str]) -> dict[str, str]:
    env = dict(image_env)
    for ref in c.get("envFrom", []):
        env.update({k: str(v) for k, v in configmaps[ref["configMapRef"]["name"]].items()})
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
    return env


# ---------------------------------------------------------------------------
# Running what the files run, against the test cluster
# ---------------------------------------------------------------------------
children: list[subprocess.Popen[str]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


class Cluster:
    """The test cluster scripts/test.sh started, and fresh databases on it."""

    def __init__(self) -> None:
        self.dir = Path(os.environ["TENANTRY_TEST_DIR"])
        self.port = int(os.environ["TENANTRY_TEST_PG_PORT"])
        self.owner_pw = os.environ["TENANTRY_TEST_OWNER_PASSWORD"]
        self.app_pw = os.environ["TENANTRY_TEST_APP_PASSWORD"]
        self.scratch = Path(tempfile.mkdtemp(prefix="deploy.", dir=self.dir))
        os.chmod(self.scratch, 0o755)
        self.databases: list[str] = []

    def create_database(self) -> str:
        """A database made by deploy/compose/initdb.sh, as the postgres
        image runs it: the superuser over the socket, the SQL file mounted."""
        name = f"deploy_{secrets.token_hex(5)}"
        mounted = self.scratch / f"initdb-{name}"
        mounted.mkdir()
        shutil.copy2(ROOT / "deploy/compose/initdb.sh", mounted / "initdb.sh")
        shutil.copy2(ROOT / "scripts/bootstrap-roles.sql", mounted / "bootstrap-roles.sql")
        os.chmod(mounted, 0o755)
        env = {"PATH": os.environ["PATH"], "PGHOST": str(self.dir / "run"), "PGPORT": str(self.port),
               "PGUSER": "postgres", "TENANTRY_DB_NAME": name, "TENANTRY_OWNER_PASSWORD": self.owner_pw,
               "TENANTRY_APP_PASSWORD": self.app_pw, "TENANTRY_BOOTSTRAP_SQL": str(mounted / "bootstrap-roles.sql")}
        argv = [str(mounted / "initdb.sh")]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", "env", *[f"{k}={v}" for k, v in env.items()], *argv]
        r = run(argv, env=env, cwd="/", timeout=60)
        assert r.returncode == 0, f"deploy/compose/initdb.sh failed: {r.stdout}{r.stderr}"
        assert f"database {name} ready" in r.stdout, r.stdout
        self.databases.append(name)
        return name

    def url(self, role: str, db: str) -> str:
        pw = self.owner_pw if role == "tenantry_owner" else self.app_pw
        return f"postgres://{role}:{urllib.parse.quote(pw, safe='')}@127.0.0.1:{self.port}/{db}"

    def drop_all(self) -> None:
        for name in self.databases:
            subprocess.run([str(ROOT / "scripts/pg.sh"), "psql", str(self.dir), str(self.port), "-q",
                            "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True, timeout=60)
        shutil.rmtree(self.scratch, ignore_errors=True)


def clean_env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTRY__", "TENANTRY_TEST_", "RUST_LOG"))}
    base.pop("TENANTRY_ENV", None)
    base.pop("TENANTRY_CONFIG_DIR", None)
    base.update(env)
    return base


def binary_argv(argv: list[str]) -> list[str]:
    assert argv[0] == "tenantry", argv
    return [BIN, *argv[1:]]


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(binary_argv(argv), env=clean_env(env), cwd=cwd, timeout=180)


class Served:
    """`serve` with the manifest's environment, the ports replaced by free ones."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.http_port, self.metrics_port = free_port(), free_port()
        env = dict(env)
        env["TENANTRY__SERVER__PORT"] = str(self.http_port)
        host = env.get("TENANTRY__METRICS__LISTEN", "").rsplit(":", 1)[0]
        env["TENANTRY__METRICS__LISTEN"] = f"{host}:{self.metrics_port}" if host else ""
        self.env, self.cwd = env, cwd
        self.log = cwd / f"serve-{self.http_port}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(binary_argv(argv), env=clean_env(env), cwd=cwd, stdout=out,
                                         stderr=subprocess.STDOUT, text=True)
        children.append(self.proc)

    def url(self, path: str, port: str = "http") -> str:
        return f"http://127.0.0.1:{self.http_port if port == 'http' else self.metrics_port}{path}"

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if http(self.url(path))[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"{path} did not answer 200 within 40 s:\n{self.log.read_text()[-3000:]}")

    def stop(self, within: float) -> int | None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None


def admin_call(served: Served, cwd: Path) -> None:
    """A token as an operator would mint one in the container, then an admin call."""
    r = run_once(["tenantry", "token", "--admin"], served.env, cwd)
    assert r.returncode == 0, f"token --admin: {r.stderr}"
    status, body = http(served.url("/v1/admin/tenants"), r.stdout.strip())
    assert status == 200, f"GET /v1/admin/tenants with that token: {status} {body[:300]}"


def secret_values(cluster: Cluster, db: str, example: dict[str, dict[str, str]], work: Path) -> dict[str, dict[str, str]]:
    """Real values for the keys of secret.example.yaml, for this database."""
    pem = work / "signing-key.pem"
    r = run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(pem)])  # as secret.example.yaml says
    assert r.returncode == 0, r.stderr
    makers = {
        "database-url": lambda: cluster.url("tenantry_app", db),
        "owner-url": lambda: cluster.url("tenantry_owner", db),
        "context-key": lambda: secrets.token_urlsafe(48),
        "signing-key.pem": lambda: pem.read_text(),
        "api-key-secret": lambda: secrets.token_urlsafe(32),
    }
    out: dict[str, dict[str, str]] = {}
    for name, keys in example.items():
        out[name] = {}
        for key in keys:
            assert key in makers, f"secret {name}/{key}: this check does not know how to make one"
            out[name][key] = makers[key]()
    return out


def pod_env(kind: str, c: dict[str, Any], spec: dict[str, Any], k8s: dict[str, Any], docker: dict[str, Any],
            values: dict[str, dict[str, str]], work: Path) -> dict[str, str]:
    """The container's environment as the kubelet makes it, its secret
    volumes as files under `work` (their mount paths rewritten to them)."""
    env = container_env_static(c, k8s["configmaps"], docker["env"])
    for e in c.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            env[e["name"]] = values[ref["name"]][ref["key"]]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts: dict[str, Path] = {}
    for m in c.get("volumeMounts", []):
        v = volumes[m["name"]]
        assert "secret" in v, f"{kind}: volume {m['name']} is not a Secret"
        d = work / f"{kind}-{m['name']}"
        d.mkdir(parents=True, exist_ok=True)
        for item in v["secret"]["items"]:
            (d / item["path"]).write_text(values[v["secret"]["secretName"]][item["key"]])
            os.chmod(d / item["path"], v["secret"].get("defaultMode", 0o644))
        mounts[m["mountPath"]] = d
    for k, val in list(env.items()):
        for mount, d in mounts.items():
            if val.startswith(mount.rstrip("/") + "/"):
                env[k] = str(d) + val[len(mount.rstrip("/")):]
        if k.endswith("_FILE"):
            assert Path(env[k]).is_file(), f"{kind}: {k}={val} is not a file of its mounted Secrets"
    return env


def run_kubernetes(cluster: Cluster, docker: dict[str, Any], k8s: dict[str, Any]) -> None:
    work = cluster.scratch / "kubernetes"
    work.mkdir()
    db = check("kubernetes: a fresh database made by deploy/compose/initdb.sh", cluster.create_database)
    if db is None:
        return
    values = secret_values(cluster, db, k8s["example_secrets"], work)
    wl = k8s["workloads"]

    def container(kind: str) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        spec = pod_spec(wl[kind])
        c = spec["containers"][0]
        argv = c.get("command", docker["argv"][:1]) + c.get("args", [])
        return argv, pod_env(kind, c, spec, k8s, docker, values, work), c

    def job() -> None:
        argv, env, _ = container("Job")
        r = run_once(argv, env, work)
        assert r.returncode == 0, f"{shlex.join(argv)} exited {r.returncode}: {r.stderr[-2000:]}"
        assert "applied 0001" in r.stderr, r.stderr
    check("kubernetes: the migrate Job's command, with its environment, migrates the fresh database", job)

    def deployment() -> None:
        argv, env, c = container("Deployment")
        served = Served(argv, env, work)
        try:
            served.wait_ready(c["readinessProbe"]["httpGet"]["path"])
            for probe in ("livenessProbe", "startupProbe"):
                path = c[probe]["httpGet"]["path"]
                status, body = http(served.url(path))
                assert status == 200, f"{probe} {path}: {status} {body[:200]}"
            status, body = http(served.url("/metrics", "metrics"))
            assert status == 200 and "tenantry_" in body, f"/metrics on the metrics port: {status}"
            admin_call(served, work)
        finally:
            grace = pod_spec(wl["Deployment"])["terminationGracePeriodSeconds"]
            code = served.stop(grace)
        assert code == 0, f"serve exited {code} after SIGTERM (within {grace} s):\n{served.log.read_text()[-2000:]}"
    check("kubernetes: the Deployment's serve answers its probes, /metrics and an admin call; stops on SIGTERM",
          deployment)

    def cronjob() -> None:
        argv, env, _ = container("CronJob")
        r = run_once(argv, env, work)
        assert r.returncode == 0, f"{shlex.join(argv)} exited {r.returncode}: {r.stderr[-2000:]}"
        report = json.loads(r.stdout.strip().splitlines()[-1])
        assert isinstance(report, dict), r.stdout
    check("kubernetes: the sweep CronJob's command runs one sweep and exits 0", cronjob)


def run_compose(cluster: Cluster, docker: dict[str, Any], compose: dict[str, Any]) -> None:
    db = check("compose: a fresh database made by deploy/compose/initdb.sh", cluster.create_database)
    if db is None:
        return
    services = compose["services"]
    variables = {"TENANTRY_APP_PASSWORD": cluster.app_pw, "TENANTRY_OWNER_PASSWORD": cluster.owner_pw}
    # The `keys` volume, mounted on the image's WORKDIR: one directory for all.
    volume = cluster.scratch / "compose-keys"
    volume.mkdir()

    def env_of(name: str) -> tuple[list[str], dict[str, str]]:
        env = dict(docker["env"])
        for k, v in compose_env(services[name]).items():
            v = interpolate(v, variables)
            if v.startswith("postgres://"):
                u = urllib.parse.urlsplit(v)
                assert u.hostname == "postgres" and u.port == 5432, f"{name}: {k} does not reach the postgres service"
                v = urllib.parse.urlunsplit(u._replace(netloc=f"{u.username}:{u.password}@127.0.0.1:{cluster.port}",
                                                       path=f"/{db}"))
            env[k] = v
        return ["tenantry", *services[name]["command"]], env

    def migrate() -> None:
        argv, env = env_of("migrate")
        r = run_once(argv, env, volume)
        assert r.returncode == 0, f"migrate exited {r.returncode}: {r.stderr[-2000:]}"
        assert "applied 0001" in r.stderr, r.stderr
    check("compose: migrate's command and environment migrate the fresh database", migrate)

    def serve_and_sweep() -> None:
        argv, env = env_of("tenantry")
        served = Served(argv, env, volume)
        try:
            served.wait_ready("/readyz")
            admin_call(served, volume)
            sweep_argv, sweep_env = env_of("sweep")
            r = run_once(sweep_argv, sweep_env, volume)
            assert r.returncode == 0, f"sweep exited {r.returncode}: {r.stderr[-2000:]}"
        finally:
            code = served.stop(40)
        assert code == 0, f"serve exited {code} after SIGTERM:\n{served.log.read_text()[-2000:]}"
        for key in ("context-key", "signing-key.pem", "api-key-secret"):
            assert (volume / ".tenantry" / key).is_file(), f"no {key} in the keys volume"
    check("compose: tenantry serves (readyz, an admin call) and sweep runs once, sharing the keys volume",
          serve_and_sweep)


def run_image_default(cluster: Cluster, docker: dict[str, Any]) -> None:
    def refuses() -> None:
        empty = cluster.scratch / "image-default"
        empty.mkdir()
        r = run_once(docker["argv"], dict(docker["env"]), empty)
        assert r.returncode != 0, "the image's default command started without any key"
        assert "no context_key" in r.stderr and "production" in r.stderr, r.stderr
        assert not any(empty.rglob("*")), f"it wrote {list(empty.rglob('*'))}"
    check("docker run (the image's ENV and CMD, no keys): refuses to start, generates nothing", refuses)


def main() -> int:
    assert BIN and Path(BIN).is_file(), "TENANTRY_BIN is not set: run through scripts/deploy-check.sh"
    docker = dockerfile_checks()
    compose = compose_checks(docker)
    k8s = kubernetes_checks(docker)
    if os.environ.get("TENANTRY_TEST_CITUS") == "1":
        log("skipped running the commands: on Citus (make test runs them on PostgreSQL)")
    elif "TENANTRY_TEST_DIR" not in os.environ:
        log("skipped running the commands: no test cluster (run through scripts/test.sh)")
    else:
        cluster = Cluster()
        try:
            run_image_default(cluster, docker)
            run_kubernetes(cluster, docker, k8s)
            run_compose(cluster, docker, compose)
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait(timeout=10)
            cluster.drop_all()
    if docker.get("ctx"):
        shutil.rmtree(docker["ctx"], ignore_errors=True)
    print(f"deploy-check: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
