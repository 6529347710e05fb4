import type { RequestHandler, Response } from 'express';
import { ErrorCode, VisionqError } from '@visionq/api';
import { OPEN_PRINCIPAL, type ApiKeyStore, type Principal, type Scope } from '@visionq/auth';

/**
 * Who the request acts for, from `Authorization: Bearer <key>`; without a keys store
 * (a loopback HOST, or AUTH=none) every request acts for the one open tenant.
 */
export function authenticate(keys: ApiKeyStore | null): RequestHandler {
  return (req, res, next) => {
    if (!keys) {
      res.locals.principal = OPEN_PRINCIPAL;
      next();
      return;
    }
    const match = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(req.get('authorization') ?? '');
    if (!match) {
      next(new VisionqError(ErrorCode.Unauthorized, 'send an API key: Authorization: Bearer <key>', [{ field: 'Authorization', message: 'missing' }]));
      return;
    }
    const principal = keys.authenticate(match[1]!);
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
