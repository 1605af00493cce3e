/**
 * What a command writes to the terminal: one line per message on stderr, and at most one
 * progress bar, with every message printed above the bar while it runs (cli-progress's own
 * log) so neither garbles the other. Not on a terminal, a bar is a plain line at most every
 * two seconds (and at its first and last step). With `quiet` (a command's --json), nothing.
 */
import cliProgress from 'cli-progress';

/** A running bar. */
export interface Bar {
  /** Move to `value`, with the format's other fields. */
  update(value: number, fields?: Record<string, string>): void;
  /** Stop drawing (the last state stays on screen). */
  stop(): void;
}

export interface BarSpec {
  /** cli-progress format on a terminal, e.g. `'eval |{bar}| {value}/{total} batches'`. */
  format: string;
  total: number;
  start?: number;
  fields?: Record<string, string>;
  /** The plain line for `value` when not on a terminal. */
  line: (value: number, total: number, fields: Record<string, string>) => string;
}

export class Terminal {
  private multi: cliProgress.MultiBar | undefined;

  constructor(
    private readonly options: { tty?: boolean; quiet?: boolean; stream?: NodeJS.WriteStream } = {},
  ) {}

  private get stream(): NodeJS.WriteStream {
    return this.options.stream ?? process.stderr;
  }

  get tty(): boolean {
    return this.options.tty ?? Boolean(this.stream.isTTY);
  }

  /** One message line (above the bar while one runs). */
  say(line: string): void {
    if (this.options.quiet) return;
    if (this.multi) {
      this.multi.log(`${line}\n`);
      this.multi.update();
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Start the bar (one at a time: a running one is stopped first). */
  bar(spec: BarSpec): Bar {
    this.multi?.stop();
    this.multi = undefined;
    if (this.options.quiet) return { update: () => undefined, stop: () => undefined };
    if (!this.tty) return this.plainBar(spec);
    const multi = new cliProgress.MultiBar({ format: fitToWidth(spec.format), stream: this.stream, hideCursor: true, gracefulExit: false, etaBuffer: 20, clearOnComplete: false }, cliProgress.Presets.shades_classic);
    this.multi = multi;
    const bar = multi.create(spec.total, spec.start ?? 0, spec.fields ?? {});
    return {
      update: (value, fields) => bar.update(value, fields ?? {}),
      stop: () => {
        if (this.multi !== multi) return;
        multi.stop();
        this.multi = undefined;
      },
    };
  }

  /** Stop whatever bar runs (before the last lines of a command, or on Ctrl-C). */
  stopBar(): void {
    this.multi?.stop();
    this.multi = undefined;
  }

  private plainBar(spec: BarSpec): Bar {
    let last = 0;
    let fields = spec.fields ?? {};
    const start = spec.start ?? 0;
    return {
      update: (value, next) => {
        fields = { ...fields, ...next };
        const now = Date.now();
        if (now - last < 2000 && value !== spec.total && value !== start + 1) return;
        last = now;
        this.stream.write(`${spec.line(value, spec.total, fields)}\n`);
      },
      stop: () => undefined,
    };
  }
}

/** The widest bar drawn, and the narrowest before the line is cut instead. */
const BAR_WIDTH = { max: 40, min: 8 };

/**
 * A cli-progress formatter that shrinks the bar so the whole line fits the terminal: cli-progress
 * cuts a line at the terminal's width, which on 80 columns would cut off the ETA at the end.
 */
function fitToWidth(format: string): cliProgress.GenericFormatter {
  return (options, params, payload) => {
    const others = cliProgress.Format.Formatter({ ...options, format: format.replace('{bar}', '') }, params, payload);
    const room = params.maxWidth - others.length - 1;
    const barsize = Math.max(BAR_WIDTH.min, Math.min(BAR_WIDTH.max, room));
    return cliProgress.Format.Formatter({ ...options, format, barsize }, params, payload);
  };
}
