/**
 * Thrown by a key lookup that cannot answer: its store is unreachable and the key is not cached, or has been
 * unreachable for longer than cached keys may be trusted. The gate answers 503 keys_unavailable: "no such key"
 * would be a lie, and a pass would skip the check.
 */
export class KeysUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeysUnavailableError';
  }
}
