import fs from 'node:fs';
import { GuardError } from '../core/errors.js';

/**
 * Turns a failed listen (EADDRINUSE, EACCES) into a user error naming the address, the process that holds the
 * port where Linux lets us see it, and the flag that changes it. Anything else stays a bug.
 */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  if (code === 'EADDRINUSE') {
    const holder = portHolder(port);
    return new GuardError('GUARD_E_LISTEN', `cannot listen on ${address}: the port is already in use${holder ? ` by ${holder}` : ''}`, {
      hint: `stop what holds it, or pick another port with --port (env GUARDCTL_PORT), e.g. --port ${port === 7860 ? 7861 : 7860}`,
      cause: err,
      details: { address, ...(holder ? { holder } : {}) },
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new GuardError('GUARD_E_LISTEN', `cannot listen on ${address}: ports below 1024 need privileges this process lacks`, {
      hint: 'use a port above 1023 with --port (env GUARDCTL_PORT) and put nginx in front (guardctl nginx render), or grant CAP_NET_BIND_SERVICE (AmbientCapabilities= in the systemd unit)',
      cause: err,
      details: { address },
    });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new GuardError('GUARD_E_LISTEN', `cannot listen on ${address}: no network interface of this machine has that address`, {
      hint: 'use --host 127.0.0.1, 0.0.0.0 or an address this machine has (ip addr)',
      cause: err,
      details: { address },
    });
  }
  return err;
}

/**
 * Who listens on a TCP port, as "pid 123 (nginx)": the socket's inode from /proc/net/tcp{,6}, then
 * the process whose /proc/PID/fd links to it. Best effort: another user's processes are unreadable without root,
 * and other systems have no /proc; then undefined.
 */
export function portHolder(port: number, proc = '/proc'): string | undefined {
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(`${proc}/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth column.
      if (cols.length > 9 && cols[3] === '0A' && parseInt(cols[1]!.split(':')[1]!, 16) === port) inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = fs.readdirSync(proc).filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return `pid ${pid}${nameOf(`${proc}/${pid}`)}`;
    }
  }
  return 'another process (run `ss -ltnp` as root to see which)';
}

/** The program's name only: its arguments (cmdline) may hold another program's secrets. */
function nameOf(dir: string): string {
  try {
    const name = fs.readFileSync(`${dir}/comm`, 'utf8').trim();
    return name ? ` (${name})` : '';
  } catch {
    return '';
  }
}
