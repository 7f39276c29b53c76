/**
 * Ring charts: the kernel's footprint spread over its source tree, one ring per directory level
 * (the centre is the tree, or the start branch), each wedge's angle proportional to the chosen
 * attribute. Drawn as SVG by hand: round (equal aspect), a wedge per directory and object,
 * labels on wedges wide enough to hold them, and `data-name`/`data-bytes` (plus a `<title>`)
 * on every wedge for hovering.
 */
import type { Site } from './account.js';
import { objectOf, type TreeDb } from './tree.js';

export const RING_ATTRS = ['static', 'current', 'current_dynamic', 'total_dynamic', 'waste'] as const;
export type RingAttr = (typeof RING_ATTRS)[number];

export interface RingNode {
  name: string;
  /** Path from the root (`fs/ext4`, `fs/ext4/inode.o`). */
  path: string;
  value: number;
  children: RingNode[];
}

export const UNPLACED = '(unplaced)';

function dynamicValue(s: Site, attr: RingAttr): number {
  switch (attr) {
    case 'current':
    case 'current_dynamic':
      return s.net;
    case 'total_dynamic':
      return s.total;
    case 'waste':
      return s.net - s.netReq;
    default:
      return 0;
  }
}

/**
 * The directory tree with values: objects from the tree database (static sizes), call sites
 * added to their function's object, or under `(unplaced)` by function when the tree lacks it.
 * `branch` roots the tree at a directory (and leaves out what is outside it).
 */
export function buildRings(sites: Iterable<Site>, db: TreeDb | null, attr: RingAttr, branch = ''): RingNode {
  const prefix = branch ? `${branch.replace(/\/+$/, '')}/` : '';
  const root: RingNode = { name: branch || (db ? 'kernel' : 'call sites'), path: '', value: 0, children: [] };
  const index = new Map<string, RingNode>([['', root]]);
  const nodeAt = (parts: string[]): RingNode => {
    let node = root;
    let path = '';
    for (const part of parts) {
      path = path ? `${path}/${part}` : part;
      let child = index.get(path);
      if (!child) {
        child = { name: part, path, value: 0, children: [] };
        node.children.push(child);
        index.set(path, child);
      }
      node = child;
    }
    return node;
  };
  const add = (parts: string[], value: number) => {
    if (value <= 0) return;
    let path = '';
    root.value += value;
    for (const part of parts) {
      path = path ? `${path}/${part}` : part;
      nodeAt(path.split('/')).value += value;
    }
  };
  if (db && (attr === 'static' || attr === 'current')) {
    for (const [obj, size] of Object.entries(db.objects)) {
      if (prefix && !obj.startsWith(prefix)) continue;
      add(obj.slice(prefix.length).split('/'), size);
    }
  }
  if (attr !== 'static') {
    for (const s of sites) {
      const value = dynamicValue(s, attr);
      const obj = db ? objectOf(db, s.caller) : undefined;
      if (obj !== undefined) {
        if (prefix && !obj.startsWith(prefix)) continue;
        add(obj.slice(prefix.length).split('/'), value);
      } else if (!prefix) {
        // Without a tree the rings are functions and their call sites; with one, what it lacks
        // goes under (unplaced), by module or function.
        const leaf = s.module ? `[${s.module}]` : s.caller;
        add(db ? [UNPLACED, leaf] : [leaf, s.site], value);
      }
    }
  }
  const sort = (n: RingNode) => {
    n.children.sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : 1));
    n.children.forEach(sort);
  };
  sort(root);
  return root;
}

function depth(n: RingNode): number {
  return n.children.length ? 1 + Math.max(...n.children.map(depth)) : 0;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const SIZE = 800;
const CENTER = SIZE / 2;
const INNER = 70;
const OUTER = 390;
const MIN_DEG = 0.4;
const LABEL_DEG = 6;
const MAX_LEVELS = 6;

function point(r: number, deg: number): string {
  const a = ((deg - 90) * Math.PI) / 180;
  return `${(CENTER + r * Math.cos(a)).toFixed(2)} ${(CENTER + r * Math.sin(a)).toFixed(2)}`;
}

function wedge(r0: number, r1: number, a0: number, a1: number): string {
  if (a1 - a0 >= 359.999) {
    // A full ring: two half arcs each way.
    return `M ${point(r1, 0)} A ${r1} ${r1} 0 1 1 ${point(r1, 180)} A ${r1} ${r1} 0 1 1 ${point(r1, 360)} `
      + `L ${point(r0, 360)} A ${r0} ${r0} 0 1 0 ${point(r0, 180)} A ${r0} ${r0} 0 1 0 ${point(r0, 0)} Z`;
  }
  const large = a1 - a0 > 180 ? 1 : 0;
  return `M ${point(r1, a0)} A ${r1} ${r1} 0 ${large} 1 ${point(r1, a1)} L ${point(r0, a1)} A ${r0} ${r0} 0 ${large} 0 ${point(r0, a0)} Z`;
}

/** An SVG document (or fragment) of the ring chart. */
export function ringsSvg(root: RingNode, options: { title: string; attr: RingAttr }): string {
  const levels = Math.max(1, Math.min(MAX_LEVELS, depth(root)));
  const band = (OUTER - INNER) / levels;
  const parts: string[] = [];
  const total = root.value;
  const draw = (node: RingNode, level: number, a0: number, a1: number, hue: number) => {
    if (level > levels || total <= 0) return;
    let at = a0;
    node.children.forEach((child, i) => {
      const span = ((a1 - a0) * child.value) / (node.value || 1);
      const start = at;
      at += span;
      if (span < MIN_DEG) return;
      const h = level === 1 ? (i * 137.508) % 360 : hue;
      const light = 42 + level * 8;
      const r0 = INNER + (level - 1) * band;
      const r1 = r0 + band;
      const label = `${child.path}: ${humanBytes(child.value)}`;
      parts.push(`<path d="${wedge(r0, r1, start, start + span)}" fill="hsl(${h.toFixed(0)} 55% ${light}%)" stroke="#fff" stroke-width="0.7" data-name="${escapeXml(child.path)}" data-bytes="${child.value}"><title>${escapeXml(label)}</title></path>`);
      if (span >= LABEL_DEG) {
        const mid = start + span / 2;
        const r = r0 + band / 2;
        const [x, y] = point(r, mid).split(' ');
        // Text along the radius, turned so it never reads upside down.
        const rot = mid <= 180 ? mid - 90 : mid + 90;
        const maxChars = Math.max(3, Math.floor(band / 6.2));
        const text = child.name.length > maxChars ? `${child.name.slice(0, maxChars - 1)}…` : child.name;
        parts.push(`<text x="${x}" y="${y}" transform="rotate(${rot.toFixed(1)} ${x} ${y})" text-anchor="middle" dominant-baseline="middle" font-size="10" pointer-events="none">${escapeXml(text)}</text>`);
      }
      draw(child, level + 1, start, start + span, h);
    });
  };
  draw(root, 1, 0, 360, 0);
  const centerLabel = `${escapeXml(root.name)}<tspan x="${CENTER}" dy="14">${escapeXml(humanBytes(total))}</tspan>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${SIZE} ${SIZE}" width="${SIZE}" height="${SIZE}" font-family="sans-serif" role="img" aria-label="${escapeXml(options.title)}">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<circle cx="${CENTER}" cy="${CENTER}" r="${INNER}" fill="#f4f4f4" stroke="#ccc" data-name="${escapeXml(root.name)}" data-bytes="${total}"><title>${escapeXml(`${root.name}: ${humanBytes(total)}`)}</title></circle>`,
    `<text x="${CENTER}" y="${CENTER - 7}" text-anchor="middle" font-size="12" pointer-events="none">${centerLabel}</text>`,
    ...parts,
    `<text x="8" y="${SIZE - 10}" font-size="11" fill="#555">${escapeXml(options.attr)}</text>`,
    '</svg>',
  ].join('\n');
}
