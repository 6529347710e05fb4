export { checkCallbackUrl } from './callback-url';
export type { CheckedCallback } from './callback-url';
export { CallbackService } from './callback.service';
export type { CallbackAttempt, CallbackSettings } from './callback.service';
export { newWebhookSecret, signWebhook, verifyWebhook } from './webhook-signature';
