/**
 * GET /api/openapi.json and GET /docs: Swagger UI served from the swagger-ui-dist package (no CDN;
 * the page loads nothing from outside this server).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import express, { type Router } from 'express';
import { buildOpenApiDocument } from './openapi.js';

const swaggerUiDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ЕСОЗ device-dispense and licence registry — API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body>
</html>`;

// validatorUrl null: Swagger UI would otherwise send the document to an outside validator.
const INIT = `window.ui = SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#swagger-ui', deepLinking: true, docExpansion: 'list', validatorUrl: null });`;

/**
 * The page and its assets come from this server only, and no other site may frame it (clickjacking a
 * page that sends requests with a pasted token). Swagger UI's "Try it out" calls the documented server
 * (PUBLIC_URL), which may be another origin than the one the page was loaded from. `data:` images are
 * the SVG icons of Swagger UI's stylesheet.
 */
export const docsContentSecurityPolicy = (publicUrl: string): string => {
  let apiOrigin = '';
  try {
    apiOrigin = new URL(publicUrl).origin;
  } catch {
    apiOrigin = '';
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${apiOrigin && apiOrigin !== 'null' ? ` ${apiOrigin}` : ''}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
};

export function registerDocsRoutes(router: Router, { publicUrl, metricsScope }: { publicUrl: () => string; metricsScope: string }): void {
  let cached: { url: string; body: string } | null = null;
  router.use('/docs', (_req, res, next) => {
    res.set('Content-Security-Policy', docsContentSecurityPolicy(publicUrl()));
    res.set('X-Frame-Options', 'DENY'); // frame-ancestors for browsers that predate CSP 2
    next();
  });
  router.get('/api/openapi.json', (_req, res) => {
    const url = publicUrl();
    if (cached?.url !== url) cached = { url, body: JSON.stringify(buildOpenApiDocument({ serverUrl: url, metricsScope })) };
    res.type('application/json').send(cached.body);
  });
  router.get('/docs', (_req, res) => void res.type('text/html').send(PAGE));
  router.get('/docs/init.js', (_req, res) => void res.type('application/javascript').send(INIT));
  router.use('/docs/assets', express.static(swaggerUiDir, { index: false, maxAge: '1h' }));
}
