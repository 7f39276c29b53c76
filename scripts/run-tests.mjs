// Runs every compiled test (unit tests beside the code, cross-cutting ones in test/) with
// node's test runner. Listing files here keeps `npm test` working on Node 20 and 22 alike.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = [...find('dist/src'), ...find('dist/test')].sort();
// No test may hang: each gets a deadline (the slowest take under a minute on 2 cores).
// --test-timeout came with Node 20.11; before it, the waits in test/helpers/wait.ts still time out.
const [major, minor] = process.versions.node.split('.').map(Number);
const timeout = major > 20 || (major === 20 && minor >= 11) ? ['--test-timeout=300000'] : [];
const args = ['--test', ...timeout, ...process.argv.slice(2), ...files];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
