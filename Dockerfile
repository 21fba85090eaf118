# One image per Chorus service, all from one build: docker build --target auth|membership|broker|webgate
# (compose.yaml builds all four). Runs as an unprivileged user; no secret is baked in.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/chorus
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this layer is reused until they change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > requirements.txt \
 && /opt/chorus/bin/pip install -r requirements.txt
COPY services ./services
RUN /opt/chorus/bin/pip install --no-deps . \
 && /opt/chorus/bin/python -m compileall -q /opt/chorus/lib

FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 chorus \
 && useradd --system --uid 10001 --gid chorus --home-dir /var/lib/chorus --create-home chorus
COPY --from=build /opt/chorus /opt/chorus
ENV PATH=/opt/chorus/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 CHORUS_DATA_DIR=/var/lib/chorus
USER chorus
WORKDIR /var/lib/chorus
ENTRYPOINT ["chorus"]

FROM runtime AS auth
ENV CHORUS_AUTH_LISTEN=0.0.0.0:50051
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
  CMD chorus health grpc "127.0.0.1:${CHORUS_AUTH_LISTEN##*:}"
CMD ["auth"]

FROM runtime AS membership
ENV CHORUS_MEMBERSHIP_LISTEN=0.0.0.0:50052
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
  CMD chorus health grpc "127.0.0.1:${CHORUS_MEMBERSHIP_LISTEN##*:}"
CMD ["membership"]

FROM runtime AS broker
ENV CHORUS_BROKER_ROUTER=tcp://0.0.0.0:5555 CHORUS_BROKER_PUB=tcp://0.0.0.0:5556 \
    CHORUS_BROKER_GRPC_LISTEN=0.0.0.0:50053
EXPOSE 5555 5556 50053
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
  CMD chorus health grpc "127.0.0.1:${CHORUS_BROKER_GRPC_LISTEN##*:}"
CMD ["broker"]

FROM runtime AS webgate
ENV CHORUS_WEBGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=3 \
  CMD chorus health http "http://127.0.0.1:${CHORUS_WEBGATE_LISTEN##*:}/healthz"
CMD ["webgate"]
