/**
 * Errors carry the errno the kernel returns for the same operation, so callers (and the FUSE
 * mount of a later stage) can map them 1:1: `err.code === 'EINVAL'`, `err.errno === 22`.
 */
export const ERRNO = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EACCES: 13,
  EBUSY: 16, EEXIST: 17, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENOSPC: 28,
  ENAMETOOLONG: 36, E2BIG: 7, ERANGE: 34,
} as const;

export type ErrnoCode = keyof typeof ERRNO;

export class TraceError extends Error {
  readonly code: ErrnoCode;
  readonly errno: number;
  constructor(code: ErrnoCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'TraceError';
    this.code = code;
    this.errno = ERRNO[code];
  }
}

export function fail(code: ErrnoCode, message: string): never {
  throw new TraceError(code, message);
}
