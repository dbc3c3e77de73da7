#!/usr/bin/env node
// The CLI entry. In a checkout, Node.js >= 22.18 runs the TypeScript sources directly (type
// stripping). The package ships no sources, because Node refuses to strip types under
// node_modules (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), but the CLI bundled into one module
// (npm run build:bundle, scripts/bundle.ts), which the container runs too.
import { existsSync } from 'node:fs';

const source = new URL('../src/main.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/agentward.mjs', import.meta.url).href);
