export interface Entry {
  readonly kind: 'compiled' | 'source';
  readonly path: string;
  /** A compiled CLI exists but some source file is newer. */
  readonly stale: boolean;
}
export function chooseEntry(root: string): Entry;
