# syntax=docker/dockerfile:1
#
# The sessiongate gateway: one static binary on a distroless base, run as a
# non-root user, with the PHP prepend file beside it.
#
#   docker build -t sessiongate .
#   docker compose up --build        (the whole stack: docker-compose.yml)
#
# deploy/dockerfile_test.go runs this file's build step (the RUN line with
# `go build`) outside Docker, with OUT set to a temporary directory, and
# checks that it yields a static binary and the prepend file: keep that
# step one plain sh command that writes only under "$OUT".

# ---- build ----------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first: this layer stays cached while only the sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: no libc dependency, so the binary runs on distroless/static
# (or scratch). -trimpath: no build-machine paths inside the binary. The
# prepend file is printed by the binary itself, so the two always match.
ARG OUT=/out
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$OUT/gateway" ./cmd/gateway \
 && "$OUT/gateway" php-prepend > "$OUT/prepend.php"

# ---- runtime --------------------------------------------------------------
# distroless/static: CA certificates, tzdata, an /etc/passwd with the
# "nonroot" user (65532); no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/local/bin/gateway
# php-fpm runs in another container: share this file with it (a volume), or
# mount the repository's sessionbridge/prepend.php there, and point
# SESSIONGATE_PHP_PREPEND at the path php-fpm sees.
COPY --from=build /out/prepend.php /usr/share/sessiongate/prepend.php
# The public listener, and the admin listener (/healthz, /readyz,
# /metrics), which HEALTHCHECK probes. Publish the admin port only to
# your monitoring network.
ENV SESSIONGATE_LISTEN=:8080 \
    SESSIONGATE_ADMIN_LISTEN=:8081
EXPOSE 8080 8081
USER 65532:65532
# No shell or curl in the image: the binary probes itself
# (GET http://127.0.0.1:8081/healthz, 2 s bound; exit 0 healthy, 1 not).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
