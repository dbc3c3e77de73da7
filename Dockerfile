# agentward container: policies compiled with the official opa binary, Node.js 24 runtime, non-root.
# Mirrors CI: the same opa version (scripts/toolchain.sh) and `npm ci`.
#   docker build -t agentward .
#   docker run -v $PWD/agentward.yaml:/etc/agentward/agentward.yaml:ro -p 8080:8080 agentward

# 1. The official opa binary (static build) of the version CI pins.
FROM openpolicyagent/opa:1.22.3-static AS opa

# 2. Production dependencies only.
FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# 3. Compile the default policy as CI does: `agentward policy build` runs opa for the WebAssembly
#    module and its IR plan, and embeds the plan so the proxy memoizes decisions. The result
#    equals the committed bundles/default-policy.tar.gz. Replace policies/ (or mount a bundle) to
#    ship your own policy.
FROM deps AS policy
COPY --from=opa /opa /usr/local/bin/opa
COPY src ./src
COPY policies ./policies
RUN ["node", "src/main.ts", "policy", "build", "policies", "--output", "/bundle.tar.gz", "--opa", "/usr/local/bin/opa"]

# 4. The JavaScript the runtime runs: esbuild bundles src/main.ts and the packages it imports into
#    one module (npm run build:bundle, scripts/bundle.ts; test/integration/lazy-imports.test.ts
#    runs that bundle in CI). One module instead of ~720 is ~10 % more requests per core and
#    ~40 MiB less resident after load (bench/README.md, "one module instead of seven hundred"),
#    and no type-stripping loader (~17 MiB). What loads only when configured (ioredis,
#    OpenTelemetry, http-proxy-3, the X.509 parser) stays out and comes from node_modules.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts/bundle.ts ./scripts/
COPY src ./src
RUN npm run build:bundle

# 5. Runtime. NODE_OPTIONS: V8 grows the young generation to 128 MiB under sustained load; 8 MiB
#    semi-spaces hold the RSS near 120-135 MiB (~100 MiB less), for about 4 % of throughput
#    (bench/README.md, "Issue 12 where it stands"; bench/lib.sh measures with the same flag). The
#    Helm chart sets the same value; a NODE_OPTIONS of your own replaces it.
#    LD_PRELOAD: jemalloc instead of glibc's malloc, which kept ~20 MiB more resident under load
#    for the same throughput (measured side by side, bench/README.md); LD_PRELOAD= turns it off.
FROM node:24-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=8 LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist/agentward.mjs /app/dist/agentward.mjs.map ./dist/
COPY config/agentward.schema.json ./config/
COPY --from=policy /bundle.tar.gz /etc/agentward/policy.tar.gz
USER node
EXPOSE 8080 9901
ENTRYPOINT ["node", "/app/dist/agentward.mjs"]
CMD ["serve", "--config", "/etc/agentward/agentward.yaml"]
