# Container image for the platform ("buildType": "docker" in component.json).
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev libcurl4-openssl-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin kafka-component

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 libcurl4 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/kafka-component /usr/local/bin/kafka-component
COPY component.json logo.png /app/
COPY schemas /app/schemas
WORKDIR /app
# No arguments: message-processing mode driven by the platform's ELASTICIO_* environment.
ENTRYPOINT ["/usr/local/bin/kafka-component"]
