/**
 * Ports for the demo: every server listens on 127.0.0.1, on a fixed default port that an
 * environment variable overrides, and a port already in use is a clear error naming that variable.
 */
import { createServer, type Server } from 'node:net';

export const HOST = '127.0.0.1';

export class PortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortError';
  }
}

/** The port from `env[variable]`, or the default. */
export function portFrom(env: NodeJS.ProcessEnv, variable: string, fallback: number): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PortError(`${variable}=${raw} is not a port number (1-65535)`);
  return port;
}

function inUse(port: number, role: string, variable: string, err: NodeJS.ErrnoException): PortError {
  if (err.code === 'EADDRINUSE') {
    return new PortError(`port ${port} on ${HOST} (${role}) is already in use. Stop whatever uses it, or pick another port: ${variable}=<port> npm run demo`);
  }
  if (err.code === 'EACCES') return new PortError(`port ${port} on ${HOST} (${role}) cannot be opened without privileges; set ${variable} to a port above 1023`);
  return new PortError(`port ${port} on ${HOST} (${role}) cannot be opened: ${err.message}`);
}

/** Listens on HOST:port (an http.Server is a net.Server); rejects with a PortError that says which variable to change. */
export function listenOn(server: Server, port: number, role: string, variable: string): Promise<void> {
  return new Promise((done, fail) => {
    const onError = (err: NodeJS.ErrnoException) => fail(inUse(port, role, variable, err));
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      done();
    });
  });
}

/**
 * Checks that a port agentward (a child process) will listen on is free now, so a taken port is
 * reported before the child starts rather than as a stack trace from it.
 */
export async function ensureFree(port: number, role: string, variable: string): Promise<void> {
  const probe = createServer();
  await listenOn(probe, port, role, variable);
  await new Promise<void>((done) => probe.close(() => done()));
}
