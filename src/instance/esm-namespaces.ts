/**
 * ES module namespaces made patchable by `nftrace/register` (import-in-the-middle), by module
 * URL. Shared through a global symbol so one registry serves every copy of nftrace loaded.
 */
const KEY = Symbol.for('nftrace.esmNamespaces');
const holder = globalThis as { [KEY]?: Map<string, Record<string, unknown>> };

export const ESM_NAMESPACES: Map<string, Record<string, unknown>> = (holder[KEY] ??= new Map());
