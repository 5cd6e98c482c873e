# pgherd's web process and (from the operations engine on) its worker: one image, two commands.
FROM node:20-bookworm-slim
ENV NEXT_TELEMETRY_DISABLED=1 NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --include=dev --no-audit --no-fund || npm install --no-audit --no-fund
COPY . .
RUN npx next build
EXPOSE 3000
CMD ["sh", "-c", "npx tsx lib/entry/cli/migrate.ts && npx tsx lib/entry/cli/createsuperuser.ts --from-env && npx tsx lib/entry/web/server.ts -p 3000 -H 0.0.0.0"]
