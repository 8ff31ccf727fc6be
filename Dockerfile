# Builds every control-plane binary; compose.yaml runs them. Queries are checked against the committed .sqlx
# data, so the build needs no database.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
# Every binary of the workspace (each subgraph, the edge, xtask, audit-verify): no list to keep in step.
RUN cargo build --release --locked --workspace --bins \
 && mkdir -p /out \
 && find target/release -maxdepth 1 -type f -perm -u+x -exec cp {} /out/ \;

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
COPY --from=build /src/migrations /src/migrations
COPY --from=build /src/schema /src/schema
COPY --from=build /src/router /src/router
COPY --from=build /src/clients/dashboard/public /src/clients/dashboard/public
WORKDIR /src
