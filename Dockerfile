# The execflow operator image. Build from the repository root:
#
#   docker build -t execflow:0.1.0 .
#
# The first stage installs the package and its dependencies into a virtual environment; the final
# stage copies only that environment onto a clean base, so no build tools or sources ship.

FROM python:3.12-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/execflow

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/execflow/bin/pip install .


FROM python:3.12-slim

# A passwd entry for the runtime uid, so libraries that look the user up by uid find one.
RUN groupadd --system --gid 65532 execflow \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin execflow

COPY --from=build /opt/execflow /opt/execflow

# Bytecode is compiled at install time; the root filesystem is read-only at run time.
ENV PATH=/opt/execflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

USER 65532:65532

# 8080: Prometheus metrics. 8081: liveness probe (/healthz).
EXPOSE 8080 8081 9443

ENTRYPOINT ["execflow", "run"]
CMD ["--settings", "/etc/execflow/settings.yaml"]
