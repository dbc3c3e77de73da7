/**
 * A real `redis-server` for tests (the Debian package's binary, or $AGENTWARD_REDIS_SERVER) on a
 * free loopback port, with nothing written to disk (`--save '' --appendonly no`). `kill` ends it
 * at once (SIGKILL: its data is gone, as after a crash); `restart` starts a new, empty one on the
 * same port, so clients that were connected reconnect to it by themselves. `pause` freezes it
 * (SIGSTOP): connections stay open and nothing is answered, as with a hung server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface TestRedis {
  url: string;
  port: number;
  /** Ends the server with SIGKILL and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts a new server on the same port (after `kill`). */
  restart(): Promise<void>;
  /** Stops the server without closing its connections (SIGSTOP): it accepts nothing and answers nothing. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  /** Ends the server for good. */
  close(): Promise<void>;
}

const BINARY = process.env.AGENTWARD_REDIS_SERVER ?? 'redis-server';

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port);
  const kill = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise<void>((done) => running.once('exit', () => done()));
    running.kill('SIGKILL');
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    restart: async () => {
      await kill();
      child = await launch(port);
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    close: async () => {
      child?.kill('SIGCONT');
      await kill();
    },
  };
}

/** Starts redis-server on `port` and waits until it accepts connections. */
async function launch(port: number): Promise<ChildProcess> {
  const child = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${port}:\n${output}`)), 15000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`redis-server could not be started (${err.message}); scripts/run test installs it`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  return child;
}

/** A port free on loopback right now (the server binds it next). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
