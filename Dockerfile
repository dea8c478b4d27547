# syntax=docker/dockerfile:1
# pullgate: a static, non-root image with no shell.
#
# Bootstrap: this image must not be pulled through pullgate itself. Push it
# to a registry the nodes reach directly (or pre-load it), and pin it by
# digest in deploy/.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/pullgate ./cmd/pullgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pullgate /usr/local/bin/pullgate
USER 65532:65532
EXPOSE 5050
ENTRYPOINT ["/usr/local/bin/pullgate"]
CMD ["serve", "--config", "/etc/pullgate/pullgate.yaml"]
