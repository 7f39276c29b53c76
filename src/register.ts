/**
 * `node --import nftrace/register app.mjs`: lets function probes reach ES modules. Registers
 * import-in-the-middle's loader hook, which makes every module's namespace patchable, and keeps
 * each namespace by its URL for `dynamic_events` (instance/probes.ts) to find. Without it, only
 * CommonJS exports and prototypes can be probed (ES module namespaces are read-only).
 */
import { register } from 'node:module';
import { addHook } from 'import-in-the-middle';
import { ESM_NAMESPACES } from './instance/esm-namespaces.js';

register('import-in-the-middle/hook.mjs', import.meta.url);
addHook((url: string, exported: Record<string, unknown>) => {
  ESM_NAMESPACES.set(url, exported);
});
