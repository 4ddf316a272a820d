# syntax=docker/dockerfile:1
# The waypoint image: the L7 proxy the control plane runs for each waypoint Gateway.
# Build from the repository root:
#   docker build -f deploy/images/waypoint.Dockerfile -t ghcr.io/ambit-mesh/ambit:<version> .

# The TypeScript build: the locked packages, then tsc into dist/ (as `make ts` does).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && cp src/api/*.proto dist/api/ \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
WORKDIR /opt/ambit
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/package.json ./package.json
COPY deploy/images/entrypoint.sh /usr/local/bin/ambit-daemon
# Istio's proxy uid, numeric so that the kubelet can check runAsNonRoot (the rendered pods run as it).
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/ambit-daemon"]
