/**
 * A kernel build tree as the kmem analyzer needs it: which object file each function is in, and
 * each object's static size (code + data, from its ELF symbol table). Walks the tree for `.o`
 * files that have their `.c` beside them (skipping scripts/ and tools/, as trace_analyze did),
 * plus System.map at the top for legacy call sites. Saved and loaded as JSON (`--save-db`,
 * `--db-file`): portable, unlike trace_analyze's pickle.
 *
 * Fixed against trace_analyze: a function belongs to exactly one object (its exact name, not
 * every object with a function that is a prefix of it); objects with only code count; sizes of
 * any magnitude are read.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { elfSymbols } from './elf.js';

export interface TreeDb {
  version: 1;
  root: string;
  /** Function → object path relative to the root (`fs/ext4/inode.o`). */
  functions: Record<string, string>;
  /** Object path → static bytes (Σ sizes of its FUNC and OBJECT symbols). */
  objects: Record<string, number>;
  /** Functions defined (as statics) in more than one object: first object kept, count here. */
  ambiguous: number;
}

const SKIP = new Set(['scripts', 'tools', '.git', 'Documentation']);

export function scanTree(root: string, progress?: (objects: number) => void): TreeDb {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`kernel tree ${root} is not a directory`);
  const db: TreeDb = { version: 1, root, functions: {}, objects: {}, ambiguous: 0 };
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP.has(e.name) || dir !== root) walk(path);
        continue;
      }
      if (!e.name.endsWith('.o') || !names.has(`${e.name.slice(0, -2)}.c`)) continue;
      const rel = relative(root, path);
      let size = 0;
      for (const s of elfSymbols(path)) {
        size += s.size;
        if (s.type !== 'FUNC') continue;
        if (db.functions[s.name] === undefined) db.functions[s.name] = rel;
        else if (db.functions[s.name] !== rel) db.ambiguous++;
      }
      db.objects[rel] = size;
      progress?.(Object.keys(db.objects).length);
    }
  };
  walk(root);
  if (Object.keys(db.objects).length === 0) throw new Error(`kernel tree ${root} has no .o files with their .c (build it first)`);
  return db;
}

export function saveTreeDb(db: TreeDb, file: string): void {
  writeFileSync(file, `${JSON.stringify(db)}\n`, { mode: 0o644 });
}

export function loadTreeDb(file: string): TreeDb {
  let db: TreeDb;
  try {
    db = JSON.parse(readFileSync(file, 'utf8')) as TreeDb;
  } catch (err) {
    throw new Error(`cannot read tree database ${file}: ${(err as Error).message}`);
  }
  if (db?.version !== 1 || typeof db.functions !== 'object' || typeof db.objects !== 'object') throw new Error(`${file} is not an nftrace kmem tree database`);
  return db;
}

/**
 * The object a call site's function is in: its exact name, else the name without GCC's
 * `.part.N`/`.isra.N`/`.constprop.N`/`.cold` suffixes. Undefined: outside the tree (unplaced).
 */
export function objectOf(db: TreeDb, caller: string): string | undefined {
  const exact = db.functions[caller];
  if (exact !== undefined) return exact;
  const dot = caller.indexOf('.');
  return dot > 0 ? db.functions[caller.slice(0, dot)] : undefined;
}
