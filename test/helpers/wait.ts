/**
 * Waits that cannot hang a test: each also watches the child or worker ending (or failing)
 * and has a deadline, and a wait for an exit that already happened returns at once.
 */
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';

const DEFAULT_MS = 30_000;

function deadline<T>(what: string, ms: number, run: (resolve: (v: T) => void, reject: (e: Error) => void) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let cleanup = () => {};
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: nothing after ${ms / 1000} s`));
    }, ms);
    cleanup = run(
      (v) => {
        clearTimeout(timer);
        cleanup();
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        cleanup();
        reject(e);
      },
    );
  });
}

/** The child's exit code (or signal name); at once if it has already exited. */
export function exited(child: ChildProcess, ms = DEFAULT_MS): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode!);
  return deadline(`pid ${child.pid} to exit`, ms, (resolve, reject) => {
    const onExit = (code: number | null, signal: string | null) => resolve(code ?? signal ?? -1);
    const onError = (err: Error) => reject(err);
    child.once('exit', onExit);
    child.once('error', onError);
    return () => {
      child.off('exit', onExit);
      child.off('error', onError);
    };
  });
}

/**
 * The text a stream of the child has written once `done(text)` holds; rejects if the child
 * exits first (saying what it wrote) or the deadline passes.
 */
export function output(child: ChildProcess, stream: Readable, done: (text: string) => boolean, ms = DEFAULT_MS): Promise<string> {
  let text = '';
  return deadline(`output of pid ${child.pid}`, ms, (resolve, reject) => {
    const onData = (d: Buffer) => {
      text += d.toString();
      if (done(text)) resolve(text);
    };
    const onExit = (code: number | null, signal: string | null) => reject(new Error(`pid ${child.pid} exited (${code ?? signal}) before it said what was awaited: ${text}`));
    const onError = (err: Error) => reject(err);
    stream.on('data', onData);
    if (child.exitCode !== null || child.signalCode !== null) queueMicrotask(() => onExit(child.exitCode, child.signalCode));
    child.once('exit', onExit);
    child.once('error', onError);
    return () => {
      stream.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
  });
}

/** A worker's next message; rejects if it fails or exits first, or after the deadline. */
export function message<T = unknown>(worker: Worker, ms = DEFAULT_MS): Promise<T> {
  return deadline(`a message from worker ${worker.threadId}`, ms, (resolve, reject) => {
    const onMessage = (m: T) => resolve(m);
    const onError = (err: Error) => reject(err);
    const onExit = (code: number) => reject(new Error(`worker ${worker.threadId} exited (${code}) before it sent a message`));
    worker.once('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
    return () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
  });
}
