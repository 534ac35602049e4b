import type { Socket } from 'node:net';

/** An IP as Dovecot expects it: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) written as plain IPv4. */
export function plainIp(ip: string | undefined): string {
  if (!ip) return '0.0.0.0';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** Client and local endpoints of an accepted connection, for forwarding to the backend. */
export interface Endpoints {
  remoteIp: string;
  remotePort: number;
  localIp: string;
  localPort: number;
}

/** Read the endpoints of an accepted TCP socket (before any TLS wrapping). */
export function endpointsOf(socket: Socket): Endpoints {
  return {
    remoteIp: plainIp(socket.remoteAddress),
    remotePort: socket.remotePort ?? 0,
    localIp: plainIp(socket.localAddress),
    localPort: socket.localPort ?? 0,
  };
}

/** `ip:port`, with brackets for IPv6. */
export function formatEndpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
