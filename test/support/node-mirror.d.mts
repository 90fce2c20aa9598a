/** Types of node-mirror.mjs (a local stand-in for https://nodejs.org/dist). */
export interface NodeMirror {
  /** e.g. http://127.0.0.1:41234/dist */
  url: string;
  /** sha256 of each tarball by nodejs.org architecture name (x64, arm64). */
  sha256: Record<string, string>;
  /** Request paths served, in order. */
  readonly requests: readonly string[];
  close(): Promise<void>;
}
export function startNodeMirror(version: string, opts?: { tamper?: boolean }): Promise<NodeMirror>;
