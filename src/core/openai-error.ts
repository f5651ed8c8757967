/**
 * The members OpenAI's error object has beside `code` and `message` (`{"error": {"message", "type", "param",
 * "code"}}`), added to the errors of the OpenAI-compatible routes (`/v1/...`) so that OpenAI clients read them
 * as they read OpenAI's own. The type follows the status, as OpenAI's documented error types do.
 */
export function openaiErrorFields(status: number, param: unknown): { type: string; param: string | null } {
  const type = status === 401 ? 'authentication_error'
    : status === 403 ? 'permission_error'
    : status === 404 ? 'not_found_error'
    : status === 429 ? 'rate_limit_error'
    : status >= 500 ? 'server_error'
    : 'invalid_request_error';
  return { type, param: typeof param === 'string' ? param : null };
}

/** Whether a route pattern (base path included) is one of the OpenAI-compatible routes. */
export function isOpenaiRoute(url: string | undefined): boolean {
  return url !== undefined && /(^|\/)v1\//.test(url) && !url.includes('/api/v1/');
}
