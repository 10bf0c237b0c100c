#!/usr/bin/env node
// The `segsync` entry point (package.json "bin"): checks the Node version, then loads the TypeScript CLI.
import { fileURLToPath } from 'node:url';
import { nodeProblem } from './node-check.js';

const problem = nodeProblem(process.versions.node, fileURLToPath(new URL('..', import.meta.url)));
if (problem) {
  process.stderr.write(problem);
  process.exit(2);
}
await import('../src/cli/main.ts');
