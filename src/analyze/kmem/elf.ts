/**
 * The symbol table of an ELF object (`.o`, vmlinux): name, type, size, value of each FUNC and
 * OBJECT symbol, read straight from the file. Replaces trace_analyze's `readelf -s` parsing,
 * which lost sizes of 100,000 and more (printed in hex). 32- and 64-bit, little-endian.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readAt } from '../../io.js';

export interface ElfSymbol {
  name: string;
  type: 'FUNC' | 'OBJECT';
  size: number;
  value: bigint;
  /** Local (static) symbol. */
  local: boolean;
}

export class ElfError extends Error {
  constructor(file: string, offset: number, what: string) {
    super(`${file}: offset ${offset}: ${what}`);
    this.name = 'ElfError';
  }
}

const SHT_SYMTAB = 2;
const STT_OBJECT = 1;
const STT_FUNC = 2;
const STB_LOCAL = 0;


export function elfSymbols(file: string): ElfSymbol[] {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const ident = readAt(fd, 0, 64);
    if (ident.length < 52 || ident.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(file, 0, 'not an ELF file');
    const is64 = ident[4] === 2;
    if (ident[5] !== 1) throw new ElfError(file, 5, 'big-endian ELF is not supported');
    const shoff = Number(is64 ? ident.readBigUInt64LE(0x28) : BigInt(ident.readUInt32LE(0x20)));
    const shentsize = ident.readUInt16LE(is64 ? 0x3a : 0x2e);
    const shnum = ident.readUInt16LE(is64 ? 0x3c : 0x30);
    if (shoff + shnum * shentsize > size) throw new ElfError(file, is64 ? 0x28 : 0x20, 'section headers past the end of the file');
    const sections = readAt(fd, shoff, shnum * shentsize);
    const section = (i: number) => {
      const at = i * shentsize;
      return is64
        ? { type: sections.readUInt32LE(at + 4), offset: Number(sections.readBigUInt64LE(at + 0x18)), size: Number(sections.readBigUInt64LE(at + 0x20)), link: sections.readUInt32LE(at + 0x28), entsize: Number(sections.readBigUInt64LE(at + 0x38)) }
        : { type: sections.readUInt32LE(at + 4), offset: sections.readUInt32LE(at + 0x10), size: sections.readUInt32LE(at + 0x14), link: sections.readUInt32LE(at + 0x18), entsize: sections.readUInt32LE(at + 0x24) };
    };
    const out: ElfSymbol[] = [];
    for (let i = 0; i < shnum; i++) {
      const sh = section(i);
      if (sh.type !== SHT_SYMTAB) continue;
      if (sh.offset + sh.size > size) throw new ElfError(file, shoff + i * shentsize, 'symbol table past the end of the file');
      const strtab = section(sh.link);
      if (strtab.offset + strtab.size > size) throw new ElfError(file, shoff + sh.link * shentsize, 'string table past the end of the file');
      const syms = readAt(fd, sh.offset, sh.size);
      const strs = readAt(fd, strtab.offset, strtab.size);
      const entsize = sh.entsize || (is64 ? 24 : 16);
      for (let at = 0; at + entsize <= syms.length; at += entsize) {
        const nameOff = syms.readUInt32LE(at);
        const info = is64 ? syms[at + 4]! : syms[at + 12]!;
        const type = info & 0xf;
        if (type !== STT_FUNC && type !== STT_OBJECT) continue;
        const symSize = Number(is64 ? syms.readBigUInt64LE(at + 16) : BigInt(syms.readUInt32LE(at + 8)));
        const value = is64 ? syms.readBigUInt64LE(at + 8) : BigInt(syms.readUInt32LE(at + 4));
        const end = strs.indexOf(0, nameOff);
        const name = strs.toString('latin1', nameOff, end < 0 ? strs.length : end);
        if (!name) continue;
        out.push({ name, type: type === STT_FUNC ? 'FUNC' : 'OBJECT', size: symSize, value, local: info >> 4 === STB_LOCAL });
      }
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
