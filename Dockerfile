# The code location's image. On Kubernetes it is both the gRPC code server of the Helm chart's user
# deployment (deploy/helm/values.yaml) and the image of every run pod the K8sRunLauncher starts.
#   docker build -t esr-export-dagster:0.1.0 .
# Nothing secret goes in: ESR_MONGODB_URI, alert tokens and DAGSTER_PG_PASSWORD arrive as environment
# variables at run time (Kubernetes Secrets), and .dockerignore keeps .local/ and .git out of the context.
FROM python:3.11-slim

# PIP_NO_CACHE_DIR keeps the install command identical to the Makefile's while leaving no wheel cache behind.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PATH=/opt/esr-export/.venv/bin:$PATH

# A fixed numeric uid/gid: Kubernetes can only prove runAsNonRoot for a numeric user, and the Helm values'
# fsGroup gives this group the export volume.
RUN groupadd --system --gid 10001 esr \
    && useradd --system --uid 10001 --gid esr --no-create-home --home-dir /opt/esr-export --shell /usr/sbin/nologin esr

WORKDIR /opt/esr-export
COPY pyproject.toml README.md constraints.txt ./
COPY esr_export_dagster ./esr_export_dagster

# The README's set-up, step for step (the Makefile's .venv/.installed recipe), so the image runs what
# `make run` and CI install, at the versions constraints.txt pins: every step but the last, which adds the
# local stand-in and the test tools.
RUN python -m venv .venv \
    && .venv/bin/python -m pip install --quiet -c constraints.txt --upgrade pip \
    && .venv/bin/python -m pip install --quiet -c constraints.txt -e .

# The run worker writes Dagster's local artefacts under DAGSTER_HOME; the export directory itself is a
# mounted volume and is created 0700 by the exporter.
RUN mkdir -p "$DAGSTER_HOME" && chown esr:esr "$DAGSTER_HOME" && chmod 0700 "$DAGSTER_HOME"

USER 10001:10001

EXPOSE 4000

# Outside Kubernetes (docker run); the Helm chart replaces it with the same command built from
# dagsterApiGrpcArgs and port.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "esr_export_dagster.definitions"]
