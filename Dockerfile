# syntax=docker/dockerfile:1
# Build a static twostep binary (pure Go: SQLite is modernc.org/sqlite, no cgo).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/twostep ./cmd/twostep

# Run it as a non-root user on an image with no shell and no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/twostep /twostep
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/twostep", "healthcheck"]
ENTRYPOINT ["/twostep"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
