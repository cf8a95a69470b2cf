"""The deployment files (Dockerfile, .dockerignore, deploy/helm/) agree with the project and with the
production instance's policies.

No Docker engine or Kubernetes cluster runs these tests: they check what the files say, the way the
build and the chart will read them. In 2021 a platform migration silently dropped the exporter's retry
policy; the Helm values are a third place the policies live, so they are compared with deploy/dagster.yaml.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.instance.config import (
    dagster_instance_config,
    get_default_tick_retention_settings,
    get_tick_retention_settings,
)
from dagster._core.storage.root import LocalArtifactStorage
from dagster._serdes import class_from_code_pointer

from esr_export_dagster.partitions import DEANERY_LIMITED_TAGS

from .conftest import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
VALUES = PROJECT_ROOT / "deploy" / "helm" / "values.yaml"
EXPORT_VOLUME = PROJECT_ROOT / "deploy" / "helm" / "export-volume.yaml"
PRODUCTION_INSTANCE = PROJECT_ROOT / "deploy" / "dagster.yaml"

# The settings the exporter reads that carry credentials (definitions.py): they may only reach a pod from a
# Kubernetes Secret, never as a literal in the values file.
SECRET_SETTINGS = {"ESR_MONGODB_URI", "ESR_TEAMS_WEBHOOK_URL", "ESR_SLACK_TOKEN", "DAGSTER_PG_PASSWORD"}

# The chart's values schema, as far as it was checked (see the header of deploy/helm/values.yaml): a dict
# lists the keys the chart knows at that level, ANY marks a Kubernetes object or free-form mapping the
# chart passes through, and a one-element list gives the schema of every item.
ANY = object()
_IMAGE = {"repository": ANY, "tag": ANY, "pullPolicy": ANY}
_TAG_LIMITS = [{"key": ANY, "value": ANY, "limit": ANY}]
CHART_SCHEMA: dict[str, Any] = {
    "dagsterWebserver": ANY,
    "dagster-user-deployments": {
        "enabled": ANY,
        "enableSubchart": ANY,
        "imagePullSecrets": ANY,
        "deployments": [
            {
                "name": ANY,
                "image": _IMAGE,
                "dagsterApiGrpcArgs": ANY,
                "codeServerArgs": ANY,
                "includeConfigInLaunchedRuns": {"enabled": ANY},
                "deploymentNamespace": ANY,
                "port": ANY,
                "replicaCount": ANY,
                "env": ANY,
                "envConfigMaps": ANY,
                "envSecrets": ANY,
                "annotations": ANY,
                "nodeSelector": ANY,
                "affinity": ANY,
                "tolerations": ANY,
                "podSecurityContext": ANY,
                "securityContext": ANY,
                "resources": ANY,
                "livenessProbe": ANY,
                "readinessProbe": ANY,
                "startupProbe": ANY,
                "labels": ANY,
                "volumeMounts": ANY,
                "volumes": ANY,
                "schedulerName": ANY,
                "initContainers": ANY,
                "sidecarContainers": ANY,
                "deploymentStrategy": ANY,
            }
        ],
    },
    "postgresql": {
        "postgresqlScheme": ANY,
        "image": _IMAGE,
        "enabled": ANY,
        "postgresqlHost": ANY,
        "postgresqlUsername": ANY,
        "postgresqlPassword": ANY,
        "postgresqlDatabase": ANY,
        "postgresqlParams": ANY,
        "service": {"port": ANY},
    },
    "generatePostgresqlPasswordSecret": ANY,
    "generateCeleryConfigSecret": ANY,
    "imagePullSecrets": ANY,
    "runLauncher": {
        "type": ANY,
        "config": {
            "k8sRunLauncher": {
                "image": _IMAGE,
                "imagePullPolicy": ANY,
                "jobNamespace": ANY,
                "loadInclusterConfig": ANY,
                "kubeconfigFile": ANY,
                "envConfigMaps": ANY,
                "envSecrets": ANY,
                "envVars": ANY,
                "volumeMounts": ANY,
                "volumes": ANY,
                "labels": ANY,
                "failPodOnRunFailure": ANY,
                "resources": ANY,
                "schedulerName": ANY,
                "securityContext": ANY,
                "runK8sConfig": {
                    "containerConfig": ANY,
                    "podSpecConfig": ANY,
                    "podTemplateSpecMetadata": ANY,
                    "jobSpecConfig": ANY,
                    "jobMetadata": ANY,
                },
            }
        },
    },
    "dagsterDaemon": {
        "enabled": ANY,
        "image": _IMAGE,
        "runCoordinator": {
            "enabled": ANY,
            "type": ANY,
            "config": {
                "queuedRunCoordinator": {
                    "maxConcurrentRuns": ANY,
                    "tagConcurrencyLimits": _TAG_LIMITS,
                    "dequeueIntervalSeconds": ANY,
                    "dequeueNumWorkers": ANY,
                    "dequeueUseThreads": ANY,
                    "blockOpConcurrencyLimitedRuns": ANY,
                }
            },
        },
        "runRetries": {"enabled": ANY, "maxRetries": ANY, "retryOnAssetOrOpFailure": ANY},
        # A free-form mapping in the chart's schema; these are the keys its instance template reads.
        "runMonitoring": {
            "enabled": ANY,
            "startTimeoutSeconds": ANY,
            "maxResumeRunAttempts": ANY,
            "pollIntervalSeconds": ANY,
        },
        "env": ANY,
        "envConfigMaps": ANY,
        "envSecrets": ANY,
        "podSecurityContext": ANY,
        "securityContext": ANY,
        "resources": ANY,
    },
    "concurrency": {
        "enabled": ANY,
        "pools": {"defaultLimit": ANY, "granularity": ANY, "opGranularityRunBuffer": ANY},
        "runs": {"maxConcurrentRuns": ANY, "tagConcurrencyLimits": _TAG_LIMITS},
    },
    "retention": {
        "enabled": ANY,
        "schedule": {"purgeAfterDays": ANY},
        "sensor": {"purgeAfterDays": ANY},
        "autoMaterialize": {"purgeAfterDays": ANY},
    },
    "telemetry": {"enabled": ANY},
    "global": {
        "postgresqlSecretName": ANY,
        "dagsterHome": ANY,
        "serviceAccountName": ANY,
        "celeryConfigSecretName": ANY,
        "dagsterInstanceConfigMap": ANY,
    },
    "additionalInstanceConfig": ANY,
    "computeLogManager": ANY,
    "pythonLogs": ANY,
    "serviceAccount": ANY,
    "ingress": ANY,
    "migrate": ANY,
    "busybox": ANY,
    "scheduler": ANY,
    "rabbitmq": ANY,
    "redis": ANY,
    "flower": ANY,
}


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def user_deployment() -> dict[str, Any]:
    (deployment,) = values()["dagster-user-deployments"]["deployments"]
    return deployment


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped, as Docker reads them."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def dockerfile(instruction: str) -> list[str]:
    return [arguments for name, arguments in dockerfile_instructions() if name == instruction]


def dockerfile_shell_commands() -> list[str]:
    return [" ".join(command.split()) for run in dockerfile("RUN") for command in run.split("&&")]


def makefile_install_commands() -> list[str]:
    """The recipe of .venv/.installed, with the Makefile's variables spelled out as the image spells them."""
    lines = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = lines.index("$(INSTALLED): pyproject.toml constraints.txt") + 1
    recipe = []
    for line in lines[start:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(BIN)", ".venv/bin").replace("$(VENV)", ".venv"))
    return recipe


def served_module_of_grpc_args(arguments: list[str]) -> str:
    return arguments[arguments.index("-m") + 1]


def cmd() -> list[str]:
    (command,) = dockerfile("CMD")
    return yaml.safe_load(command)


# --- Dockerfile -------------------------------------------------------------------------------------


def test_the_image_installs_the_project_with_the_makefiles_own_pip_commands_but_not_the_test_tools():
    pip_commands = [command for command in makefile_install_commands() if "pip install" in command]
    extras = [command for command in pip_commands if "[" in command]
    assert extras == [".venv/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'"], pip_commands
    image_commands = dockerfile_shell_commands()
    for command in pip_commands:
        if command in extras:
            # The stand-in, pytest and Playwright have no place in the production image.
            assert command not in image_commands, f"the Dockerfile installs the test tools: `{command}`"
        else:
            assert command in image_commands, f"the Dockerfile does not run `{command}`"
    assert ".venv/bin/python -m pip install --quiet -c constraints.txt -e ." in image_commands
    # Every install, the image's included, takes the versions the constraints file pins.
    assert all(" -c constraints.txt " in command for command in pip_commands), pip_commands
    # The venv the recipe creates when there is none: `$(PYTHON) -m venv $(VENV)`.
    assert "python -m venv .venv" in image_commands


def test_the_image_starts_from_python_3_11_slim():
    assert dockerfile("FROM") == ["python:3.11-slim"]


def test_the_image_serves_the_module_the_project_declares():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    module = pyproject["tool"]["dagster"]["module_name"]
    (location,) = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text(encoding="utf-8"))["load_from"]
    assert location["python_module"]["module_name"] == module
    assert cmd()[:3] == ["dagster", "api", "grpc"]
    assert served_module_of_grpc_args(cmd()) == module
    assert served_module_of_grpc_args(user_deployment()["dagsterApiGrpcArgs"]) == module


def test_dg_loads_the_same_code_location_as_dagster():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dagster, dg = pyproject["tool"]["dagster"], pyproject["tool"]["dg"]
    assert dg["directory_type"] == "project"
    assert dg["project"]["root_module"] == dagster["module_name"].split(".")[0]
    assert dg["project"]["code_location_target_module"] == dagster["module_name"]
    assert dg["project"]["code_location_name"] == dagster["code_location_name"]


def test_the_image_runs_as_a_non_root_user_the_pods_also_require():
    user = dockerfile("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "Kubernetes can only check runAsNonRoot for a numeric uid"
    pod = user_deployment()["podSecurityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (int(uid), int(gid), int(gid))


def test_the_image_exposes_the_grpc_port_the_helm_values_use():
    port = user_deployment()["port"]
    assert dockerfile("EXPOSE") == [str(port)]
    assert cmd()[cmd().index("-p") + 1] == str(port)
    assert cmd()[cmd().index("-h") + 1] == "0.0.0.0"


def test_the_image_bakes_in_no_secret_and_copies_only_the_package():
    for arguments in dockerfile("ENV") + dockerfile("ARG"):
        for name in SECRET_SETTINGS | {"PASSWORD", "TOKEN"}:
            assert name not in arguments.upper(), arguments
    copied = [shlex.split(arguments)[:-1] for arguments in dockerfile("COPY")]
    assert sorted(source for sources in copied for source in sources) == [
        "README.md",
        "constraints.txt",
        "esr_export_dagster",
        "pyproject.toml",
    ]


def test_the_build_context_leaves_out_local_state_and_git():
    ignored = {
        line.strip()
        for line in (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".local", ".git", ".pytest_cache", "**/__pycache__", ".env"} <= ignored


# --- Helm values ----------------------------------------------------------------------------------


def helm_instance_policies(chart_values: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml policies the chart renders from these values (its configmap-instance template)."""
    concurrency, daemon, retention = (
        chart_values["concurrency"],
        chart_values["dagsterDaemon"],
        chart_values["retention"],
    )
    assert concurrency["enabled"] is True and retention["enabled"] is True
    assert daemon["runCoordinator"]["enabled"] is True and daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    retries, monitoring = daemon["runRetries"], daemon["runMonitoring"]
    return {
        "telemetry": {"enabled": chart_values["telemetry"]["enabled"]},
        "concurrency": {
            "runs": {
                "max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"],
            },
            "pools": {"default_limit": concurrency["pools"]["defaultLimit"]},
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "retention": {
            "schedule": {"purge_after_days": retention["schedule"]["purgeAfterDays"]},
            "sensor": {"purge_after_days": retention["sensor"]["purgeAfterDays"]},
        },
    }


def production_policies() -> dict[str, Any]:
    config = yaml.safe_load(PRODUCTION_INSTANCE.read_text(encoding="utf-8"))
    return {key: value for key, value in config.items() if key != "storage"}


def tick_retention(policies: dict[str, Any]) -> dict[str, Any]:
    """Retention as Dagster applies it: the chart demands a `started` entry that Dagster defaults anyway."""
    return {
        kind: get_tick_retention_settings(
            policies["retention"].get(kind), get_default_tick_retention_settings(instigator)
        )
        for kind, instigator in (("schedule", InstigatorType.SCHEDULE), ("sensor", InstigatorType.SENSOR))
    }


def without_retention(policies: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in policies.items() if key != "retention"}


def test_the_helm_values_carry_the_production_instances_policies():
    from_helm, production = helm_instance_policies(values()), production_policies()
    assert set(from_helm) == set(production), "a policy of deploy/dagster.yaml has no Helm counterpart"
    assert without_retention(from_helm) == without_retention(production)
    assert tick_retention(from_helm) == tick_retention(production)


def test_the_helm_values_keep_runs_of_one_deanery_in_line_and_retries_for_crashes_only():
    policies = helm_instance_policies(values())
    limits = [{"key": tag, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} for tag in DEANERY_LIMITED_TAGS]
    assert policies["concurrency"]["runs"]["tag_concurrency_limits"] == limits
    assert policies["run_retries"]["enabled"] is True and policies["run_retries"]["max_retries"] >= 1
    assert policies["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert policies["run_monitoring"]["enabled"] is True
    assert policies["telemetry"]["enabled"] is False
    concurrency = policies["concurrency"]
    assert 1 <= concurrency["pools"]["default_limit"] < concurrency["runs"]["max_concurrent_runs"]


def test_the_run_queue_limits_are_set_only_where_the_chart_accepts_them():
    # The chart fails to render when concurrency.runs and the queued coordinator's config both set them.
    queued = values()["dagsterDaemon"]["runCoordinator"].get("config", {}).get("queuedRunCoordinator", {})
    assert "maxConcurrentRuns" not in queued and "tagConcurrencyLimits" not in queued


def test_dagster_accepts_the_instance_the_helm_values_render(tmp_path):
    chart_values = values()
    rendered = {**helm_instance_policies(chart_values), **chart_values["additionalInstanceConfig"]}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered), encoding="utf-8")

    config, _ = dagster_instance_config(str(tmp_path))

    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_runs_are_launched_as_kubernetes_jobs_by_a_launcher_the_image_can_load():
    assert values()["runLauncher"]["type"] == "K8sRunLauncher"
    # Every run pod loads the instance, whose run_launcher names this class: the image must have it.
    launcher = class_from_code_pointer("dagster_k8s.launcher", "K8sRunLauncher")
    assert launcher.__name__ == "K8sRunLauncher"


def test_the_helm_values_hold_no_secret():
    text = VALUES.read_text(encoding="utf-8")
    assert not re.search(r"[a-z+]+://[^\s/:@]+:[^\s/@]+@", text), "a URL with credentials"
    assert "mongodb://" not in text and "mongodb+srv://" not in text
    chart_values = values()
    assert chart_values["generatePostgresqlPasswordSecret"] is False
    assert chart_values["postgresql"]["postgresqlPassword"] == ""
    assert chart_values["global"]["postgresqlSecretName"]
    deployment = user_deployment()
    assert not SECRET_SETTINGS & set(deployment["env"]), "a credential written as a plain env value"
    assert [source["name"] for source in deployment["envSecrets"]] == ["esr-export-secrets"]
    written = [
        key
        for key, value in _leaves(chart_values)
        if re.search("password|token|webhook", key, re.IGNORECASE) and isinstance(value, str) and value
    ]
    assert not written, f"credentials written in the values: {written}"


def test_the_exports_and_stored_selections_live_on_the_persistent_volume():
    deployment = user_deployment()
    claim = yaml.safe_load(EXPORT_VOLUME.read_text(encoding="utf-8"))
    assert claim["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in claim["spec"]["accessModes"]
    (volume,) = [v for v in deployment["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (mount,) = [m for m in deployment["volumeMounts"] if m["name"] == volume["name"]]
    on_volume = PurePosixPath(mount["mountPath"])

    assert on_volume in PurePosixPath(deployment["env"]["ESR_EXPORT_DIR"]).parents
    artifact_storage = values()["additionalInstanceConfig"]["local_artifact_storage"]
    storage = class_from_code_pointer(artifact_storage["module"], artifact_storage["class"])
    assert storage is LocalArtifactStorage
    assert on_volume in PurePosixPath(LocalArtifactStorage(**artifact_storage["config"]).storage_dir).parents
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def test_sftp_delivery_keys_come_from_a_secret_mounted_read_only_and_only_their_paths_are_written():
    deployment = user_deployment()
    (volume,) = [v for v in deployment["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "esr-export-delivery-ssh" and volume["secret"]["optional"] is True
    assert volume["secret"]["defaultMode"] == 0o440
    (mount,) = [m for m in deployment["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    for setting in ("ESR_DELIVERY_SSH_KEY_FILE", "ESR_DELIVERY_KNOWN_HOSTS"):
        assert PurePosixPath(mount["mountPath"]) in PurePosixPath(deployment["env"][setting]).parents


def test_pods_run_without_privileges_and_runs_get_the_same_contexts():
    deployment = user_deployment()
    container = deployment["securityContext"]
    assert container["allowPrivilegeEscalation"] is False and container["capabilities"]["drop"] == ["ALL"]
    launcher = values()["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["securityContext"] == container
    assert launcher["runK8sConfig"]["podSpecConfig"]["securityContext"] == deployment["podSecurityContext"]


def test_every_key_of_the_helm_values_is_one_the_chart_knows():
    unknown = list(_unknown_keys(values(), CHART_SCHEMA, ()))
    assert not unknown, f"not in the chart's values schema: {unknown}"


def _unknown_keys(node: Any, schema: Any, path: tuple[str, ...]):
    if schema is ANY:
        return
    if isinstance(schema, list):
        for index, item in enumerate(node):
            yield from _unknown_keys(item, schema[0], (*path, str(index)))
        return
    for key, value in node.items():
        if key not in schema:
            yield ".".join((*path, key))
        else:
            yield from _unknown_keys(value, schema[key], (*path, key))


def _leaves(node: Any, key: str = ""):
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from _leaves(child, child_key)
    elif isinstance(node, list):
        for child in node:
            yield from _leaves(child, key)
    else:
        yield key, node


def test_the_helm_schema_check_catches_a_misspelt_key():
    misspelt = {"dagsterDaemon": {"runRetries": {"retryOnOpFailure": False}}, "concurency": {}}
    assert sorted(_unknown_keys(misspelt, CHART_SCHEMA, ())) == [
        "concurency",
        "dagsterDaemon.runRetries.retryOnOpFailure",
    ]


def test_the_project_pins_the_kubernetes_library_with_the_rest_of_the_dagster_family():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = pyproject["project"]["dependencies"]
    assert "dagster-k8s==0.29.27" in dependencies and "dagster-postgres==0.29.27" in dependencies
    assert metadata.version("dagster-k8s") == metadata.version("dagster-postgres")
