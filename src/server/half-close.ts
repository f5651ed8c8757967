import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { CidrList } from '../gate/ip.js';

/**
 * Lets a client that shuts down its write side after a complete request (shutdown(SHUT_WR), `socket.end()`,
 * `nc -N`) still read the answer, as HTTP/1.1 allows. By default Node's HTTP server ends its side of the
 * connection as soon as the client's FIN arrives, so the answer could never be sent, yet the request had already
 * spent its nonce and quota, and the routes cancelled the inference as if the client had gone.
 *
 * With this, a FIN alone is not "gone": the answer is sent, then the connection closes (Node marks the exchange
 * as the connection's last). A client that is really gone is still seen as soon as TCP says so (a reset, or a
 * failed write), which closes the response and cancels the work. A FIN cannot tell a half-close from a close, so
 * a direct client that closes with a FIN mid-inference costs the rest of that one inference, within its key's
 * limits. A trusted proxy (nginx) never half-closes towards its upstream: its FIN means its client went away, so
 * such a connection is closed at once and the work is cancelled as before.
 */
export function answerHalfClosedClients(server: Server, proxies?: CidrList): void {
  // Node's own switch for this (lib/_http_server.js socketOnEnd), read on every client FIN; createServer has no
  // option for it. It relies on the net-level allowHalfOpen, on by default for HTTP servers; an HTTPS server gets
  // it from its options (buildServer sets it).
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  if (!proxies || proxies.entries.length === 0) return;
  server.on('connection', (socket: Socket) => {
    if (proxies.has(socket.remoteAddress ?? '')) socket.once('end', () => socket.destroy());
  });
}
