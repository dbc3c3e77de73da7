#!/usr/bin/env node
// The CLI entry. Node.js >= 22.18 runs the TypeScript sources directly (type stripping).
import '../src/main.ts';
