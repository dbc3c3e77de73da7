/**
 * A preload for a child process (`node --import test/helpers/module-log.ts ...`): appends the URL
 * of every module the process resolves, by `import` or `require`, to the file named by
 * $AGENTWARD_MODULE_LOG, one per line (module.registerHooks, synchronous hooks, Node 22.15+).
 * With $AGENTWARD_MODULE_FAIL set, resolving exactly that specifier fails as it would were the
 * package missing from node_modules (a broken install).
 */
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const log = process.env.AGENTWARD_MODULE_LOG;
const fail = process.env.AGENTWARD_MODULE_FAIL;
if (log === undefined) throw new Error('module-log.ts: set AGENTWARD_MODULE_LOG');

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === fail) throw Object.assign(new Error(`Cannot find module '${specifier}' (AGENTWARD_MODULE_FAIL)`), { code: 'MODULE_NOT_FOUND' });
    const resolved = next(specifier, context);
    appendFileSync(log, `${resolved.url}\n`);
    return resolved;
  },
});
