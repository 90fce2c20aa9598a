/**
 * A time axis cut into a fixed number of bins whose width doubles whenever an event falls past
 * its end (adjacent bins are added together), so that per-bin sums over a stream of events of
 * unknown span stay exact at the current resolution in constant memory. Pure.
 */

/** Numbers per bin of one series (e.g. one per outcome), added together when bins merge. */
export class BinSeries {
  data: Float64Array;
  constructor(
    readonly bins: number,
    readonly stride: number,
  ) {
    this.data = new Float64Array(bins * stride);
  }

  /** Bins 2i and 2i+1 become bin i. */
  halve(): void {
    const { bins, stride, data } = this;
    const next = new Float64Array(bins * stride);
    for (let i = 0; i < bins; i++) {
      const to = (i >> 1) * stride;
      for (let k = 0; k < stride; k++) next[to + k]! += data[i * stride + k]!;
    }
    this.data = next;
  }

  add(bin: number, k: number, v: number): void {
    this.data[bin * this.stride + k]! += v;
  }

  get(bin: number, k: number): number {
    return this.data[bin * this.stride + k]!;
  }
}

export class TimeGrid {
  /** Width of one bin, ms. */
  width: number;
  private readonly series: BinSeries[] = [];

  constructor(
    /** Epoch ms of the start of bin 0. */
    readonly t0: number,
    readonly bins = 240,
    initialWidth = 50,
  ) {
    this.width = initialWidth;
  }

  /** A series on this grid, merged with it. */
  track(stride: number): BinSeries {
    const s = new BinSeries(this.bins, stride);
    this.series.push(s);
    return s;
  }

  get end(): number {
    return this.t0 + this.width * this.bins;
  }

  /** Widen the bins until `t` falls inside the grid. */
  cover(t: number): void {
    while (t > this.end) {
      this.width *= 2;
      for (const s of this.series) s.halve();
    }
  }

  binOf(t: number): number {
    this.cover(t);
    return Math.max(0, Math.min(this.bins - 1, Math.floor((t - this.t0) / this.width)));
  }

  /**
   * Call `f(bin, ms)` for each bin that [start, end) overlaps, with the overlap in ms (the grid
   * covers `end` first). A zero-length interval counts 0 ms in its bin.
   */
  spread(start: number, end: number, f: (bin: number, ms: number) => void): void {
    const s = Math.max(start, this.t0);
    const e = Math.max(s, end);
    this.cover(e);
    const first = this.binOf(s);
    const last = this.binOf(e);
    for (let b = first; b <= last; b++) {
      const lo = Math.max(s, this.t0 + b * this.width);
      const hi = Math.min(e, this.t0 + (b + 1) * this.width);
      f(b, Math.max(0, hi - lo));
    }
  }
}
