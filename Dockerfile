# syntax=docker/dockerfile:1
# segsync daemon image: Node 24 runs the TypeScript sources directly (type stripping), so there is no build
# step; the first stage only installs the production dependencies exactly as locked.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM node:24-slim
ENV NODE_ENV=production \
    SEGSYNC_LOG_JSON=1 \
    SEGSYNC_HTTP_PORT=9464
# The code is owned by root and read-only for the service user.
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY destinations ./destinations
COPY models ./models
# /project is the working directory: config/ and mappings/ (mount your own over them), out/ for the file
# destination and .segsync/ for the embedded database; only the last two are writable.
WORKDIR /project
COPY config ./config
COPY mappings ./mappings
RUN mkdir -p /project/out /project/.segsync && chown node:node /project/out /project/.segsync
VOLUME ["/project/.segsync"]
USER node
EXPOSE 9464
STOPSIGNAL SIGTERM
# Liveness only (the process answers); readiness (/readyz) is for orchestrators that route or roll out.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SEGSYNC_HTTP_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --max-semi-space-size=8: the V8 setting scripts/dev.sh gives the CLI, tests and benchmarks (see there).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/src/cli/main.ts"]
CMD ["daemon"]
