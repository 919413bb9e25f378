# One image for both commands: `queuescale adapter ...` and `queuescale controller ...`.
#   docker build -t REGISTRY/queuescale:0.1.0 .
# Build stage: wheels are installed into /install so the runtime stage carries no pip cache or sources.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
# The product and its command only: the test world (lab/: the sandbox emulators and the demo) stays out,
# and `queuescale demo` here says in one line that the demo is not installed in this image.
COPY adapter ./adapter
COPY autoscaler ./autoscaler
COPY core ./core
COPY queuescale ./queuescale
RUN pip install --prefix=/install .

FROM python:3.11-slim
# The manifests mount a read-only root filesystem with a writable /tmp: no bytecode files are written,
# and matplotlib (imported by the simulate command) keeps its cache under /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
COPY --from=build /install /usr/local
# A numeric user, so the kubelet can check runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 queuescale \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin queuescale
USER 10001:10001
# 6443: the adapter's HTTPS API; 9090: the controller's metrics and health.
EXPOSE 6443 9090
ENTRYPOINT ["queuescale"]
CMD ["--help"]
