# Build stage: dev dependencies (typescript) compile src/ to dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and dist/ only; no TypeScript, no tsx, no npm in the process tree.
FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
RUN mkdir -p /data /witness && chown node:node /data /witness
# The image's unprivileged `node` user; /data and /witness (an anchor witness file on its own volume) are the writable places it needs.
USER node
VOLUME /data
EXPOSE 4000
# Readiness (stores reachable, projections running), with node's fetch: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 itself (exec form, no npm/npx/sh in between): SIGTERM reaches main.ts's graceful shutdown.
# Run with `docker run --init` (compose: init: true) to also reap zombies.
CMD ["node", "--enable-source-maps", "dist/main.js"]
