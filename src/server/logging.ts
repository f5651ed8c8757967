import type { FastifyReply, FastifyRequest } from 'fastify';
import { truncateIp } from '../gate/ip.js';

/**
 * What the daemon's request logs may say about a request: method, path without the query string (queries
 * can carry user text), the client's network, and the response status. Headers are never logged (they carry
 * signatures and key ids belong in the audit file).
 */
export const requestSerializers = {
  req(request: FastifyRequest) {
    const url = request.url ?? '';
    const q = url.indexOf('?');
    return {
      method: request.method,
      path: q === -1 ? url : url.slice(0, q),
      client_net: truncateIp(request.socket?.remoteAddress ?? ''),
    };
  },
  res(reply: FastifyReply) {
    return { status: reply.statusCode };
  },
};
