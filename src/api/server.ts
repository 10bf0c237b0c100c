import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { identityAllows, type Identity, type Permission } from '../auth/permissions.ts';
import { registerDashboard } from '../dashboard/pages.ts';
import { describeError } from '../errors.ts';
import { ApiError } from './errors.ts';
import { authenticate, credentialsConfigured } from './authenticate.ts';
import { openApiDocument } from './openapi.ts';
import { API_PREFIX, registerApi, sendError } from './routes.ts';
import type { ControlPlane } from './service.ts';

/**
 * The API (/api/v1) and the dashboard on one fastify server, in one plugin whose single onRequest hook checks
 * the permission every route declares (`config.permission`; 'public' only for the login page and static
 * assets). The daemon and `segsync ui` both mount it.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    permission?: Permission | 'public';
    kind?: 'api' | 'page';
  }
  interface FastifyRequest {
    identity?: Identity & { via: 'bearer' | 'session' };
  }
}

export const CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  upgradeInsecureRequests: null,
};

export async function mountControlPlane(server: FastifyInstance, cp: ControlPlane): Promise<void> {
  await server.register(async (scope) => {
    // same-origin referrer policy: the browser then sends Origin on same-origin form posts (no-referrer makes it 'null').
    await scope.register(helmet, { contentSecurityPolicy: { useDefaults: false, directives: CSP }, hsts: false, referrerPolicy: { policy: 'same-origin' } });
    await scope.register(formbody);

    scope.addHook('onRequest', async (request, reply) => {
      const config = request.routeOptions.config;
      const permission = config.permission;
      if (permission === 'public' || (permission === undefined && request.is404)) return;
      // Fail closed: a route someone added without declaring its permission is served to no one.
      if (permission === undefined) return sendError(reply, new ApiError(500, 'NO_PERMISSION_DECLARED', `${request.method} ${request.routeOptions.url} declares no permission (config.permission); it is refused until it does`));
      const page = config.kind === 'page';
      if (!(await credentialsConfigured(cp.app()))) {
        if (page) return reply.code(403).type('text/html').send(disabledPage());
        return sendError(reply, new ApiError(403, 'API_DISABLED', 'the API is off: no credential is configured (segsync tokens create, auth.oidc in settings, or SEGSYNC_API_TOKEN)'));
      }
      const identity = await authenticate(request, cp.app());
      if (!identity) {
        if (page) return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
        return sendError(reply, new ApiError(401, 'UNAUTHENTICATED', 'send Authorization: Bearer <token> (an API token, an OIDC token or SEGSYNC_API_TOKEN)'));
      }
      // A form posted with the session cookie must come from this origin (SameSite=Strict does the rest).
      if (identity.via === 'session' && request.method !== 'GET' && request.method !== 'HEAD' && !sameOrigin(request)) {
        return sendError(reply, new ApiError(403, 'CSRF', 'a form post from another origin was refused'));
      }
      if (!identityAllows(identity, permission)) {
        return sendError(reply, new ApiError(403, 'FORBIDDEN', `${identity.actor.type}:${identity.actor.id} lacks the permission '${permission}'`, { permission }));
      }
      request.identity = identity;
    });

    scope.setErrorHandler((err, request, reply) => {
      if (err instanceof ApiError) return sendError(reply, err);
      const e = err as { statusCode?: number; code?: string; message?: string };
      if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return sendError(reply, new ApiError(e.statusCode, e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'BAD_REQUEST' : 'BAD_REQUEST', e.message ?? 'bad request'));
      cp.app().log.error({ err: describeError(err), url: request.url }, 'control plane request failed');
      return sendError(reply, new ApiError(500, 'INTERNAL', 'the request failed; the daemon log has the details'));
    });

    scope.setNotFoundHandler((request, reply) => {
      if (request.url.startsWith(API_PREFIX)) return sendError(reply, new ApiError(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}; /api/v1/openapi.json lists them`));
      return reply.code(404).type('text/html').send('<!doctype html><title>not found</title><p>Not found. <a href="/">Overview</a></p>');
    });

    scope.get(`${API_PREFIX}/openapi.json`, { config: { permission: 'read', kind: 'api' } }, async () => openApiDocument());
    registerApi(scope, cp, (req) => req.identity!);
    await registerDashboard(scope, cp);
  });
}

function sameOrigin(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin' || site === 'none';
  const origin = request.headers.origin ?? request.headers.referer;
  if (!origin) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function disabledPage(): string {
  return '<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>segsync: dashboard off</title>' +
    '<p>The dashboard is off: no credential is configured. Set <code>SEGSYNC_API_TOKEN</code> and restart (docs/dashboard.md).</p>';
}
