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
const args = ['--test', ...process.argv.slice(2), ...files];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
