/**
 * Watching files that are reloaded when they change (the listener's TLS files, a SPIFFE trust
 * bundle file, the Txn-Token signing key): the one place that knows how files are replaced in
 * practice. Editors rename a new file onto the old one and a Kubernetes secret volume swaps its
 * `..data` symlink; a watch on the file itself survives neither, so each file's folder is
 * watched (and its symlink target's folder), and only events for the files' names, or for
 * Kubernetes' `..` entries, count: other files in the folder, say an audit log, never cause or
 * delay a reload. Events are debounced, because one replacement is several events.
 */
import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface FileWatchOptions {
  /** Called once the events have been quiet for `debounceMs`; it reads the files again itself. */
  onChange: () => void;
  /** A folder that cannot be watched (at the start or later): reload stays off for it. */
  onError: (err: unknown, dir: string) => void;
  /** Wait after the last event before `onChange`. */
  debounceMs: number;
}

export interface FileWatch {
  close(): void;
}

/** Watches `files` (absolute paths; a missing file is watched for through its folder). */
export function watchFiles(files: readonly string[], options: FileWatchOptions): FileWatch {
  const dirs = new Set<string>();
  const names = new Set<string>();
  for (const file of files) {
    dirs.add(dirname(file));
    names.add(basename(file));
    // A symlinked file changes where its target lives.
    try {
      const target = realpathSync(file);
      dirs.add(dirname(target));
      names.add(basename(target));
    } catch {
      // Missing for now: the folder watch sees it appear.
    }
  }
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const relevant = (name: string | null) => name === null || names.has(basename(name)) || name.startsWith('..');
  const watchers: FSWatcher[] = [];
  for (const dir of dirs) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (closed || !relevant(name)) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(options.onChange, options.debounceMs);
        timer.unref();
      });
      watcher.on('error', (err) => options.onError(err, dir));
      watchers.push(watcher);
    } catch (err) {
      options.onError(err, dir);
    }
  }
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
