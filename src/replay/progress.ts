/**
 * Progress of a replay on stderr: a bar redrawn in place on a terminal (messages done, of how
 * many when known, rate, ETA), a plain line every `intervalMs` otherwise (logs, pipes), nothing
 * when quiet. The fraction done is by messages when their number is known (Maildirs, files),
 * else by bytes read (an mbox is not counted ahead).
 */

export type ProgressMode = 'bar' | 'lines' | 'off';

export interface ProgressOptions {
  mode: ProgressMode;
  write: (text: string) => void;
  totalMessages: number | null;
  totalBytes: number;
  /** lines mode: at most one line this often (default 10 s); bar mode redraws every 200 ms */
  intervalMs?: number;
  /** terminal width for the bar (default 80) */
  columns?: number;
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0');
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(sec).padStart(2, '0')}`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

export class Progress {
  private readonly o: ProgressOptions;
  private readonly now: () => number;
  private readonly started: number;
  private last: number;
  private messages = 0;
  private bytes = 0;
  private drawn = false;

  constructor(options: ProgressOptions) {
    this.o = options;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    // the first line after one interval: a short run shows only the final one
    this.last = this.started;
  }

  /** Bytes read so far (over all inputs). */
  read(bytes: number): void {
    this.bytes = bytes;
  }

  /** One more message done. */
  done(): void {
    this.messages++;
    const t = this.now();
    const every = this.o.mode === 'bar' ? 200 : (this.o.intervalMs ?? 10_000);
    if (this.o.mode !== 'off' && t - this.last >= every) {
      this.last = t;
      this.draw(false);
    }
  }

  /** The state as one line (without the bar): for tests and the final line. */
  status(): { fraction: number | null; rate: number; eta: number | null; text: string } {
    const elapsed = (this.now() - this.started) / 1000;
    const rate = elapsed > 0 ? this.messages / elapsed : 0;
    const total = this.o.totalMessages;
    let fraction: number | null = null;
    if (total !== null && total > 0) fraction = Math.min(1, this.messages / total);
    else if (this.o.totalBytes > 0) fraction = Math.min(1, this.bytes / this.o.totalBytes);
    const eta = fraction !== null && fraction > 0 && elapsed > 0 ? (elapsed * (1 - fraction)) / fraction : null;
    const done = total !== null ? `${count(this.messages)}/${count(total)} messages` : `${count(this.messages)} messages`;
    const pct = fraction !== null ? ` (${Math.floor(fraction * 100)}%)` : '';
    const text = `${done}${pct}, ${rate >= 10 ? Math.round(rate) : rate.toFixed(1)} msg/s, ETA ${eta === null ? '--:--' : formatDuration(eta)}`;
    return { fraction, rate, eta, text };
  }

  private draw(final: boolean): void {
    const s = this.status();
    if (this.o.mode === 'lines') {
      this.o.write(`checkid replay: ${final ? 'done, ' : ''}${s.text}\n`);
      return;
    }
    const width = Math.max(10, Math.min(40, (this.o.columns ?? 80) - s.text.length - 4));
    const filled = s.fraction === null ? 0 : Math.round(s.fraction * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    // \r and erase-line: redrawn in place; the final one ends the line
    this.o.write(`\r\x1b[K${bar} ${s.text}${final ? '\n' : ''}`);
    this.drawn = true;
  }

  /** The last state, on a line of its own. */
  finish(): void {
    if (this.o.mode === 'off') return;
    if (this.o.mode === 'bar' || this.drawn || this.messages > 0) this.draw(true);
  }
}
