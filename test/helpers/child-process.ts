/**
 * The real servers the integration tests start (Hydra, Jaeger, Prometheus): a free loopback port
 * for each, and the process itself, its last output kept for error messages and killed with the
 * test process should a test never stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A port free on 127.0.0.1 now (the kernel's pick; another process could take it before use). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export interface TestChild {
  child: ChildProcess;
  /** The last 64 KiB of stdout and stderr. */
  output(): string;
  /** Resolves with the exit code when the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after 5 s; resolves once the process has exited. */
  stop(): Promise<void>;
}

export function startChild(binary: string, args: string[], env?: NodeJS.ProcessEnv): TestChild {
  let output = '';
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-64 * 1024);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const orphanGuard = () => child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  let gone = false;
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      gone = true;
      process.off('exit', orphanGuard);
      r(code);
    }),
  );
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
