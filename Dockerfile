# agentward container: policies compiled with the official opa image, Node.js 24 runtime, non-root.
# Mirrors CI: the same opa version (scripts/toolchain.sh) and `npm ci`.
#   docker build -t agentward .
#   docker run -v $PWD/agentward.yaml:/etc/agentward/agentward.yaml:ro -p 8080:8080 agentward

# 1. Compile the default policy to an OPA WebAssembly bundle. The opa image has no shell, so
#    RUN uses the exec form. Replace policies/ (or mount a bundle) to ship your own policy.
FROM openpolicyagent/opa:1.22.3 AS policy
COPY policies /policies
# Built from inside the folder, as `agentward policy build` does, so the bundle equals the
# committed bundles/default-policy.tar.gz.
WORKDIR /policies
RUN ["opa", "build", "-t", "wasm", "-e", "agentward/decision", "--ignore", "*_test.rego", "-o", "/bundle.tar.gz", "."]

# 2. Production dependencies only.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# 3. Runtime: Node.js runs the TypeScript sources directly (type stripping); nothing to build.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY config/agentward.schema.json ./config/
COPY --from=policy /bundle.tar.gz /etc/agentward/policy.tar.gz
USER node
EXPOSE 8080 9901
ENTRYPOINT ["node", "/app/src/main.ts"]
CMD ["serve", "--config", "/etc/agentward/agentward.yaml"]
