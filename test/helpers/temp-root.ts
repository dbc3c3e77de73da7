/**
 * vitest globalSetup: every temporary folder the suites make (`mkdtemp` under `os.tmpdir()`, in
 * the test processes and in the servers they start) goes under one folder for the run, removed
 * when the run ends, so that a run leaves nothing in /tmp (before this each run left ~1,400
 * folders). TMPDIR is set here, in vitest's main process, before the test workers start; they
 * and every child process inherit it (Node's os.tmpdir() and Go's os.TempDir() both read it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'agentward-vitest-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
