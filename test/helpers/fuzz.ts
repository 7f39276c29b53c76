/** Inputs for the filter and trigger fuzz tests: kernel-checked seeds, mutations, random strings. */

/** Known filters the kernel accepts or refuses, and edge cases of the grammar. */
export const FILTER_SEEDS = [
  'prev_pid == 1', 'prev_pid != 1', 'prev_pid < 5', 'prev_pid <= 5', 'prev_pid > 5', 'prev_pid >= 5', 'prev_state & 2',
  'prev_pid == -1', 'prev_pid == 0x10', 'prev_pid == 010', 'prev_pid == 0b1', 'prev_pid == 99999999999999999999',
  'prev_pid == 123456789012345678901234', 'prev_pid === 1', 'prev_pid = 1', 'prev_pid', 'prev_pid ==', 'prev_pid == abc',
  'prev_pid == "x"', 'prev_comm == 5', 'prev_comm == "bash"', 'prev_comm != "bash"', "prev_comm ~ 'ba*'", 'prev_comm ~ "*sh"',
  'prev_comm ~ "*as*"', 'prev_comm ~ "b?sh"', 'prev_comm ~ "[ab]ash"', 'prev_comm ~ "!bash"', 'prev_pid ~ 5', 'prev_comm < "a"',
  'prev_comm == "abc', '(prev_pid == 1', 'prev_pid == 1)', 'prev_pid == 1 )', '((prev_pid == 1)', 'prev_pid == 1 & next_pid == 2',
  '"abc"', '&& prev_pid == 1', 'bogus == 1', 'prev_pid == 1 || next_pid == 2', 'prev_pid == 1 && next_pid == 2 || prev_prio > 3',
  '!(prev_pid == 1)', '!!prev_pid == 1', 'prev_pid == 1 || !next_pid == 2', '()', '  ', 'prev_pid == 1 ||| next_pid == 2',
  '(prev_pid == 1) (next_pid == 2)', 'prev_pid  <  1', ' prev_pid==1 ', 'prev_pid ==1&&next_pid==2', 'prev_pid.foo == 1',
  'prev_pid.ustring == 1', 'CPU == 0', 'CPU != 3', 'CPU & CPUS{0-1}', 'CPU == CPUS{0}', 'CPU < CPUS{0}', 'COMM == "node"',
  'comm ~ "no*"', 'COMM == 5', 'common_pid != 3', 'common_type == 1', 'prev_pid == 1 && (next_pid == 2 || (prev_prio < 3 && !(next_prio > 4)))',
  "prev_comm == 'x\"y'", 'prev_pid == 1-2', 'prev_pid == --1', 'prev_pid == +1', 'prev_pid==0x', 'prev_pid == 1a',
  'prev_pid == 1 && && next_pid == 2', '(', ')', '!', 'prev_state == -9223372036854775808', 'prev_state == 9223372036854775808',
];

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['(', ')', '!', '&&', '||', '&', '|', '"', "'", ' ', '==', '!=', '~', '<', '>=', '*', '?', '[', ']', '{', '}', '0x', '-', '1', 'prev_pid', 'prev_comm', 'CPU', 'COMM', '.', '\\', 'CPUS{', '\t'];

export function mutations(seeds: string[], n: number, seed: number): string[] {
  const rand = prng(seed);
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = pick(seeds);
    const edits = 1 + Math.floor(rand() * 3);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (s.length + 1));
      const kind = rand();
      if (kind < 0.4) s = s.slice(0, at) + pick(PIECES) + s.slice(at);
      else if (kind < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 3));
      else if (kind < 0.85) s = s + pick([' && ', ' || ']) + pick(seeds);
      else s = s.slice(0, at) + String.fromCharCode(32 + Math.floor(rand() * 95)) + s.slice(at + 1);
    }
    out.push(s);
  }
  return out;
}

export function randomStrings(n: number, seed: number): string[] {
  const rand = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.floor(rand() * 40);
    let s = '';
    for (let j = 0; j < len; j++) s += rand() < 0.5 ? PIECES[Math.floor(rand() * PIECES.length)] : String.fromCharCode(1 + Math.floor(rand() * 126));
    out.push(s);
  }
  return out;
}
