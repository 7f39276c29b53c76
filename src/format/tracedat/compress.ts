/**
 * Compression codecs of trace.dat v7: zstd (what Debian's trace-cmd writes) through
 * @bokuweb/zstd-wasm, a WebAssembly build of libzstd shipped inside its npm package (no native
 * build, no download at install time), and zlib through node:zlib. See docs/tracedat.md.
 */
import { deflateSync, inflateSync } from 'node:zlib';

export type CompressionName = 'zstd' | 'zlib' | 'none';

export interface Codec {
  name: CompressionName;
  /** The version string written into the file header. */
  version: string;
  compress(data: Uint8Array): Uint8Array;
  decompress(data: Uint8Array, size: number): Uint8Array;
}

let zstd: Promise<Codec> | null = null;
let zstdLoaded: Codec | null = null;

async function loadZstd(): Promise<Codec> {
  const wasm = await import('@bokuweb/zstd-wasm');
  await wasm.init();
  return (zstdLoaded = {
    name: 'zstd',
    version: '1.5.4',
    compress: (data) => wasm.compress(data, 3),
    decompress: (data, size) => wasm.decompress(data, { defaultHeapSize: Math.max(size, 1024) }),
  });
}

const ZLIB: Codec = {
  name: 'zlib',
  version: '1.2.13',
  compress: (data) => deflateSync(data),
  decompress: (data, size) => inflateSync(data, { maxOutputLength: Math.max(size, 1) }),
};

/** The codec for a compression name as found in a file header; null for 'none'. */
export async function codecFor(name: string): Promise<Codec | null> {
  switch (name) {
    case 'none':
    case '':
      return null;
    case 'zstd':
      zstd ??= loadZstd();
      return zstd;
    case 'zlib':
      return ZLIB;
    default:
      throw new Error(`unsupported compression '${name}'`);
  }
}

/** A codec usable synchronously: none and zlib always, zstd once codecFor('zstd') has loaded it. */
export function loadedCodec(name: string): Codec | null {
  if (name === 'zstd') {
    if (!zstdLoaded) throw new Error("zstd is not loaded yet (await codecFor('zstd') first)");
    return zstdLoaded;
  }
  if (name === 'zlib') return ZLIB;
  if (name === 'none' || name === '') return null;
  throw new Error(`unsupported compression '${name}'`);
}
