/**
 * `--vmlinux FILE`: place functions in the source tree without a build tree, from a vmlinux with
 * debug info (Debian's linux-image-*-dbg has one). The ELF symbol table gives each function's
 * address and size; DWARF's compile units (`.debug_info`, versions 2–5) give each unit's source
 * file and address ranges. A function belongs to the unit whose ranges hold its address, and
 * `fs/ext4/inode.c` stands in for the object `fs/ext4/inode.o`. Static sizes count code only
 * (data symbols are not in the units' ranges).
 *
 * Only the first entry of each unit is read (its attributes), so even a 1 GB vmlinux is one
 * pass over `.debug_info` headers. Compressed sections (SHF_COMPRESSED, zlib) are inflated.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readAt } from '../../io.js';
import { inflateSync } from 'node:zlib';
import { ElfError, elfSymbols } from './elf.js';
import type { TreeDb } from './tree.js';

interface Section { name: string; offset: number; size: number; flags: bigint; addr: bigint }

const SHF_COMPRESSED = 0x800n;


function sectionsOf(fd: number, file: string): { sections: Section[]; read: (s: Section) => Buffer } {
  const size = fstatSync(fd).size;
  const ident = readAt(fd, 0, 64);
  if (ident.length < 64 || ident.readUInt32BE(0) !== 0x7f454c46 || ident[4] !== 2 || ident[5] !== 1) throw new ElfError(file, 0, 'not a 64-bit little-endian ELF file');
  const shoff = Number(ident.readBigUInt64LE(0x28));
  const shentsize = ident.readUInt16LE(0x3a);
  const shnum = ident.readUInt16LE(0x3c);
  const shstrndx = ident.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > size) throw new ElfError(file, 0x28, 'section headers past the end of the file');
  const raw = readAt(fd, shoff, shnum * shentsize);
  const hdr = (i: number) => ({
    nameOff: raw.readUInt32LE(i * shentsize),
    flags: raw.readBigUInt64LE(i * shentsize + 8),
    addr: raw.readBigUInt64LE(i * shentsize + 0x10),
    offset: Number(raw.readBigUInt64LE(i * shentsize + 0x18)),
    size: Number(raw.readBigUInt64LE(i * shentsize + 0x20)),
  });
  const strs = hdr(shstrndx);
  const names = readAt(fd, strs.offset, strs.size);
  const sections: Section[] = [];
  for (let i = 0; i < shnum; i++) {
    const h = hdr(i);
    const end = names.indexOf(0, h.nameOff);
    sections.push({ name: names.toString('latin1', h.nameOff, end < 0 ? names.length : end), offset: h.offset, size: h.size, flags: h.flags, addr: h.addr });
  }
  const read = (s: Section) => {
    if (s.offset + s.size > size) throw new ElfError(file, s.offset, `section ${s.name} runs past the end of the file`);
    const data = readAt(fd, s.offset, s.size);
    if ((s.flags & SHF_COMPRESSED) === 0n) return data;
    // Elf64_Chdr: type (1 = zlib), reserved, size, alignment; then the stream.
    if (data.readUInt32LE(0) !== 1) throw new ElfError(file, s.offset, `section ${s.name}: unsupported compression ${data.readUInt32LE(0)}`);
    return inflateSync(data.subarray(24));
  };
  return { sections, read };
}

/** A little-endian reader over one section. */
class Reader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly file: string, readonly section: string) {}
  fail(what: string): never {
    throw new ElfError(this.file, this.pos, `${this.section}: ${what}`);
  }
  u8(): number { if (this.pos + 1 > this.buf.length) this.fail('truncated'); return this.buf[this.pos++]!; }
  u16(): number { if (this.pos + 2 > this.buf.length) this.fail('truncated'); const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  u32(): number { if (this.pos + 4 > this.buf.length) this.fail('truncated'); const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  u64(): bigint { if (this.pos + 8 > this.buf.length) this.fail('truncated'); const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  uleb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 70n) this.fail('LEB128 too long');
    }
  }
  sleb(): bigint {
    let result = 0n;
    let shift = 0n;
    let b: number;
    do {
      b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    } while (b & 0x80);
    if (b & 0x40) result -= 1n << shift;
    return result;
  }
  cstr(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) this.fail('unterminated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  skip(n: number): void {
    if (this.pos + n > this.buf.length) this.fail('truncated');
    this.pos += n;
  }
}

// DWARF constants used here.
const DW_TAG_compile_unit = 0x11;
const DW_TAG_partial_unit = 0x3c;
const DW_AT = { name: 0x03, low_pc: 0x11, high_pc: 0x12, ranges: 0x55, str_offsets_base: 0x72, addr_base: 0x73, rnglists_base: 0x74 };
const DW_UT_compile = 1;
const DW_UT_partial = 3;

/** An attribute value: a number, a string, a string by index (strx forms), or nothing we need. */
type Value = bigint | string | { strx: bigint } | null;

interface Unit { name: string; ranges: [bigint, bigint][] }

/** Read one attribute value of `form` (every DWARF 2–5 form; the ones we do not need are skipped). */
function readForm(r: Reader, form: number, is64: boolean, addrSize: number, strings: { str: Buffer; lineStr: Buffer }, implicit: bigint): Value {
  const offset = () => (is64 ? r.u64() : BigInt(r.u32()));
  const strAt = (buf: Buffer, at: bigint) => {
    const i = Number(at);
    const end = buf.indexOf(0, i);
    return buf.toString('utf8', i, end < 0 ? buf.length : end);
  };
  const u24 = () => BigInt(r.u16() | (r.u8() << 16));
  switch (form) {
    case 0x01: return addrSize === 8 ? r.u64() : BigInt(r.u32()); // addr
    case 0x03: r.skip(r.u16()); return null; // block2
    case 0x04: r.skip(r.u32()); return null; // block4
    case 0x05: return BigInt(r.u16()); // data2
    case 0x06: return BigInt(r.u32()); // data4
    case 0x07: return r.u64(); // data8
    case 0x08: return r.cstr(); // string
    case 0x09: case 0x18: r.skip(Number(r.uleb())); return null; // block, exprloc
    case 0x0a: r.skip(r.u8()); return null; // block1
    case 0x0b: return BigInt(r.u8()); // data1
    case 0x0c: return BigInt(r.u8()); // flag
    case 0x0d: return r.sleb(); // sdata
    case 0x0e: return strAt(strings.str, offset()); // strp
    case 0x0f: return r.uleb(); // udata
    case 0x10: return offset(); // ref_addr
    case 0x11: return BigInt(r.u8()); // ref1
    case 0x12: return BigInt(r.u16()); // ref2
    case 0x13: return BigInt(r.u32()); // ref4
    case 0x14: return r.u64(); // ref8
    case 0x15: return r.uleb(); // ref_udata
    case 0x16: return readForm(r, Number(r.uleb()), is64, addrSize, strings, implicit); // indirect
    case 0x17: return offset(); // sec_offset
    case 0x19: return 1n; // flag_present
    case 0x1a: return { strx: r.uleb() }; // strx
    case 0x1b: return r.uleb(); // addrx
    case 0x1c: return BigInt(r.u32()); // ref_sup4
    case 0x1d: offset(); return null; // strp_sup (the supplementary file is not read)
    case 0x1e: r.skip(16); return null; // data16
    case 0x1f: return strAt(strings.lineStr, offset()); // line_strp
    case 0x20: return r.u64(); // ref_sig8
    case 0x21: return implicit; // implicit_const
    case 0x22: case 0x23: return r.uleb(); // loclistx, rnglistx
    case 0x24: return r.u64(); // ref_sup8
    case 0x25: return { strx: BigInt(r.u8()) }; // strx1
    case 0x26: return { strx: BigInt(r.u16()) }; // strx2
    case 0x27: return { strx: u24() }; // strx3
    case 0x28: return { strx: BigInt(r.u32()) }; // strx4
    case 0x29: return BigInt(r.u8()); // addrx1
    case 0x2a: return BigInt(r.u16()); // addrx2
    case 0x2b: return u24(); // addrx3
    case 0x2c: return BigInt(r.u32()); // addrx4
    default: return r.fail(`unsupported DWARF form 0x${form.toString(16)}`);
  }
}

/** Each compile unit's source file and address ranges. */
function compileUnits(file: string, sec: (name: string) => Buffer | null): Unit[] {
  const info = sec('.debug_info');
  const abbrev = sec('.debug_abbrev');
  if (!info || !abbrev) throw new Error(`${file} has no DWARF debug info (.debug_info/.debug_abbrev): use a vmlinux with debug info, such as Debian's linux-image-*-dbg`);
  const strings = { str: sec('.debug_str') ?? Buffer.alloc(0), lineStr: sec('.debug_line_str') ?? Buffer.alloc(0) };
  const rnglists = sec('.debug_rnglists');
  const ranges4 = sec('.debug_ranges');
  const addrSec = sec('.debug_addr');
  const strOffsets = sec('.debug_str_offsets');
  const units: Unit[] = [];
  const r = new Reader(info, file, '.debug_info');
  while (r.pos < info.length) {
    const start = r.pos;
    let length = BigInt(r.u32());
    let is64 = false;
    if (length === 0xffffffffn) {
      length = r.u64();
      is64 = true;
    }
    const end = r.pos + Number(length);
    if (end > info.length) r.fail(`unit at ${start} runs past the section`);
    const version = r.u16();
    let addrSize: number;
    let abbrevOff: bigint;
    if (version >= 5) {
      const type = r.u8();
      addrSize = r.u8();
      abbrevOff = is64 ? r.u64() : BigInt(r.u32());
      if (type !== DW_UT_compile && type !== DW_UT_partial) {
        r.pos = end;
        continue;
      }
    } else {
      abbrevOff = is64 ? r.u64() : BigInt(r.u32());
      addrSize = r.u8();
    }
    const code = r.uleb();
    const a = new Reader(abbrev, file, '.debug_abbrev');
    a.pos = Number(abbrevOff);
    // Find the abbreviation for the unit's first entry.
    let tag = -1;
    let attrs: [number, number, bigint][] = [];
    for (;;) {
      const c = a.uleb();
      if (c === 0n) break;
      const t = Number(a.uleb());
      a.u8(); // has children
      const list: [number, number, bigint][] = [];
      for (;;) {
        const at = Number(a.uleb());
        const form = Number(a.uleb());
        const implicit = form === 0x21 ? a.sleb() : 0n;
        if (at === 0 && form === 0) break;
        list.push([at, form, implicit]);
      }
      if (c === code) {
        tag = t;
        attrs = list;
        break;
      }
    }
    if (tag !== DW_TAG_compile_unit && tag !== DW_TAG_partial_unit) {
      r.pos = end;
      continue;
    }
    const values = new Map<number, { form: number; value: Value }>();
    for (const [at, form, implicit] of attrs) values.set(at, { form, value: readForm(r, form, is64, addrSize, strings, implicit) });
    r.pos = end;
    let name = values.get(DW_AT.name)?.value;
    if (name && typeof name === 'object' && 'strx' in name && strOffsets) {
      // DWARF 5 string index: through .debug_str_offsets, from the unit's base (default: after its header).
      const base = (values.get(DW_AT.str_offsets_base)?.value as bigint | undefined) ?? 8n;
      const at = Number(base + name.strx * (is64 ? 8n : 4n));
      const off = is64 ? strOffsets.readBigUInt64LE(at) : BigInt(strOffsets.readUInt32LE(at));
      const i = Number(off);
      const e = strings.str.indexOf(0, i);
      name = strings.str.toString('utf8', i, e < 0 ? strings.str.length : e);
    }
    if (typeof name !== 'string') continue;
    const addrBase = (values.get(DW_AT.addr_base)?.value as bigint | undefined) ?? 8n;
    const addrx = (index: bigint) => (addrSec ? addrSec.readBigUInt64LE(Number(addrBase + index * 8n)) : 0n);
    const low = values.get(DW_AT.low_pc);
    const lowPc = low ? (low.form === 0x01 ? (low.value as bigint) : addrx(low.value as bigint)) : 0n;
    const unit: Unit = { name, ranges: [] };
    const high = values.get(DW_AT.high_pc);
    if (low && high) {
      // DWARF 4+: high_pc in a data form is an offset from low_pc.
      const hv = high.value as bigint;
      unit.ranges.push([lowPc, high.form === 0x01 ? hv : lowPc + hv]);
    }
    const rng = values.get(DW_AT.ranges);
    if (rng) {
      if (version >= 5 && rnglists) {
        const base = (values.get(DW_AT.rnglists_base)?.value as bigint | undefined) ?? 12n;
        let off = rng.value as bigint;
        if (rng.form !== 0x17) off = base + BigInt(rnglists.readUInt32LE(Number(base + off * 4n)));
        unit.ranges.push(...readRngList(rnglists, Number(off), lowPc, addrx, file));
      } else if (ranges4) {
        let at = Number(rng.value as bigint);
        let base = lowPc;
        while (at + 16 <= ranges4.length) {
          const s = ranges4.readBigUInt64LE(at);
          const e = ranges4.readBigUInt64LE(at + 8);
          at += 16;
          if (s === 0n && e === 0n) break;
          if (s === 0xffffffffffffffffn) base = e;
          else unit.ranges.push([base + s, base + e]);
        }
      }
    }
    units.push(unit);
  }
  return units;
}

function readRngList(buf: Buffer, at: number, lowPc: bigint, addrx: (i: bigint) => bigint, file: string): [bigint, bigint][] {
  const r = new Reader(buf, file, '.debug_rnglists');
  r.pos = at;
  const out: [bigint, bigint][] = [];
  let base = lowPc;
  for (;;) {
    const kind = r.u8();
    switch (kind) {
      case 0: return out; // end_of_list
      case 1: base = addrx(r.uleb()); break; // base_addressx
      case 2: { const s = addrx(r.uleb()); const e = addrx(r.uleb()); out.push([s, e]); break; } // startx_endx
      case 3: { const s = addrx(r.uleb()); out.push([s, s + r.uleb()]); break; } // startx_length
      case 4: { const s = r.uleb(); const e = r.uleb(); out.push([base + s, base + e]); break; } // offset_pair
      case 5: base = r.u64(); break; // base_address
      case 6: { const s = r.u64(); const e = r.u64(); out.push([s, e]); break; } // start_end
      case 7: { const s = r.u64(); out.push([s, s + r.uleb()]); break; } // start_length
      default: r.fail(`unknown range list entry ${kind}`);
    }
  }
}

/** A tree database from a vmlinux: functions → `dir/file.o` (from their unit's `dir/file.c`). */
export function vmlinuxDb(file: string): TreeDb {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new Error(`cannot read vmlinux ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let units: Unit[];
  try {
    const { sections, read } = sectionsOf(fd, file);
    const sec = (name: string) => {
      const s = sections.find((x) => x.name === name);
      return s ? read(s) : null;
    };
    units = compileUnits(file, sec);
  } finally {
    closeSync(fd);
  }
  const spans = units.flatMap((u) => u.ranges.filter(([s, e]) => e > s).map(([s, e]) => ({ s, e, name: u.name })));
  spans.sort((x, y) => (x.s < y.s ? -1 : x.s > y.s ? 1 : 0));
  const find = (addr: bigint) => {
    let lo = 0;
    let hi = spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const sp = spans[mid]!;
      if (addr < sp.s) hi = mid - 1;
      else if (addr >= sp.e) lo = mid + 1;
      else return sp.name;
    }
    return undefined;
  };
  const db: TreeDb = { version: 1, root: file, functions: {}, objects: {}, ambiguous: 0 };
  for (const sym of elfSymbols(file)) {
    if (sym.type !== 'FUNC' || sym.size === 0) continue;
    const source = find(sym.value);
    if (!source) continue;
    const obj = source.replace(/^(\.\/)+/, '').replace(/\.[cS]$/, '.o');
    if (db.functions[sym.name] === undefined) db.functions[sym.name] = obj;
    else if (db.functions[sym.name] !== obj) db.ambiguous++;
    db.objects[obj] = (db.objects[obj] ?? 0) + sym.size;
  }
  if (Object.keys(db.functions).length === 0) throw new Error(`${file}: no function fell in a DWARF compile unit's ranges`);
  return db;
}
