import fs from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { RouteContext } from './shared.js';

/** The types the page's files may have; anything else is not served. */
export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/** The page has no inline scripts or styles and talks only to its own origin. */
export const WEB_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The web page: the files directly in the web directory, at {base}/ (index.html) and {base}/<file>. Read at
 * request time (whatever is there now), revalidated on every use (no-cache + ETag), never a directory listing.
 */
export function webRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const dir = ctx.config.webDir;
  if (dir === null) return;
  const root = ctx.path('/');
  if (ctx.config.basePath !== '') {
    // Relative links in the page need the trailing slash.
    app.get(ctx.config.basePath, async (_request, reply) => reply.redirect(root, 308));
  }
  app.get(root, (request, reply) => serveFile(dir, 'index.html', request, reply));
  app.get<{ Params: { file: string } }>(ctx.path('/:file'), (request, reply) => serveFile(dir, request.params.file, request, reply));
}

async function serveFile(dir: string, name: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const type = CONTENT_TYPES[path.extname(name).toLowerCase()];
  if (!FILE_NAME.test(name) || name.includes('..') || type === undefined) throw notFound();
  const file = path.join(dir, name);
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    throw notFound();
  }
  if (!stat.isFile()) throw notFound();
  const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  reply.headers({
    'Cache-Control': 'no-cache',
    ETag: etag,
    'Last-Modified': stat.mtime.toUTCString(),
    'Content-Security-Policy': WEB_CSP,
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  });
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  let content: Buffer;
  try {
    content = await fs.readFile(file);
  } catch {
    throw notFound();
  }
  return reply.type(type).send(content);
}

function notFound(): ApiError {
  return new ApiError('not_found');
}
