import type { RequestHandler, Response } from 'express';
import { ErrorCode, VisionqError } from '@visionq/api';
import { OPEN_PRINCIPAL, type ApiKeyStore, type Principal, type Scope } from '@visionq/auth';

/**
 * Who the request acts for, from `Authorization: Bearer <key>` (or, for a browser on the
 * admin pages, HTTP Basic with the key as the password); without a keys store (a loopback
 * HOST, or AUTH=none) every request acts for the one open tenant.
 */
export function authenticate(keys: ApiKeyStore | null): RequestHandler {
  return (req, res, next) => {
    if (!keys) {
      res.locals.principal = OPEN_PRINCIPAL;
      next();
      return;
    }
    const key = keyOf(req.get('authorization') ?? '');
    if (!key) {
      next(new VisionqError(ErrorCode.Unauthorized, 'send an API key: Authorization: Bearer <key>', [{ field: 'Authorization', message: 'missing' }]));
      return;
    }
    const principal = keys.authenticate(key);
    if (!principal) {
      next(new VisionqError(ErrorCode.Unauthorized, 'the API key is not valid (unknown or revoked)', [{ field: 'Authorization', message: 'invalid key' }]));
      return;
    }
    res.locals.principal = principal;
    next();
  };
}

/** 403 `forbidden` unless the request's key has `scope` (or `admin`, which has them all). */
export function requireScope(scope: Scope): RequestHandler {
  return (_req, res, next) => {
    const { scopes, keyId } = principalOf(res);
    if (scopes.has(scope) || scopes.has('admin')) next();
    else next(new VisionqError(ErrorCode.Forbidden, `key ${keyId} lacks the scope "${scope}"`, [{ field: 'Authorization', message: `needs ${scope}` }]));
  };
}

export function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}

/** The key of a Bearer header, or the password of a Basic one (what a browser sends when asked). */
function keyOf(header: string): string | undefined {
  const bearer = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(header);
  if (!basic) return undefined;
  const credentials = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const password = credentials.slice(credentials.indexOf(':') + 1);
  return credentials.includes(':') && /^[\x21-\x7e]+$/.test(password) ? password : undefined;
}
