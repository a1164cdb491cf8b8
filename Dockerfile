# syntax=docker/dockerfile:1
# bulkhead's container image: a static binary on distroless, as a non-root
# user, data in /data. Build with the version and commit stamped:
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse --short=12 HEAD) -t bulkhead .
# (make image does this.) See README.md, "Deploying".

ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=
# go.mod's toolchain line is fetched through the module proxy when the
# image's Go is older.
ENV GOTOOLCHAIN=auto CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/bulkheadhq/bulkhead/internal/cli.Version=${VERSION} -X github.com/bulkheadhq/bulkhead/internal/cli.Commit=${COMMIT}" \
      -o /out/bulkhead ./cmd/bulkhead \
 && mkdir -m 0700 /out/data

FROM ${BASE_IMAGE}
COPY --from=build /out/bulkhead /usr/local/bin/bulkhead
# The data directory (the SQLite store, the keys, the generated operator
# token) belongs to the image's non-root user, 65532.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV BULKHEAD_DATA=/data BULKHEAD_ADDR=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/bulkhead", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/bulkhead"]
CMD ["serve"]
