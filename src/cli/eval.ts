/**
 * `sparsify eval CODERS [MODEL] [DATASET]`: evaluate a run's coders (or any coder
 * directories, or a Hub repo of coders) inside the model on rows the run did not train on,
 * and write eval.json (and density.safetensors) beside them.
 */
import { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { closeRuntime, getRuntime } from '../bridge/runtime.js';
import { runtimeConfigure } from '../bridge/ops.js';
import { ConfigError, parseFlags } from '../config/errors.js';
import { EvalOptionsSchema, type EvalOptions } from '../config/eval.js';
import { evaluate, evaluateCrossLayer, type CoderEval, type CrossLayerEvalReport, type EvalReport, type SpliceMetrics } from '../eval/index.js';
import { CODER_METRICS, SPLICE_METRICS, type Column } from '../eval/metrics/index.js';
import { checkSaveDir } from '../trainer/run-dir.js';
import { writeFileAtomic } from '../util/files.js';
import { writeSafetensors } from '../util/safetensors.js';
import { CODER_RUN_ARGUMENTS, findCoderRun, loadCoderRun } from './coder-run.js';
import { rowsWithin } from '../data/split.js';
import { fieldsOf, readOptions } from './options.js';
import { argumentErrorExit, runErrorExit, subcommand } from './subcommand.js';
import { Terminal, type Bar } from './terminal.js';

const FIELDS = fieldsOf(EvalOptionsSchema.shape, 'eval', ['coders', 'model', 'dataset']);

export function buildEvalCommand(): Command {
  return subcommand(
    'eval',
    "Evaluate coders inside the model: reconstruction (fvu, explained variance), sparsity (L0, dead and dense latents)\nand the model's loss with each hookpoint spliced in (CE, KL, loss recovered), on rows the run did not train on.",
    CODER_RUN_ARGUMENTS,
    FIELDS,
  );
}

/** Parse `sparsify eval` arguments (after `eval`). */
export function parseEvalArgs(argv: string[]): EvalOptions {
  const command = buildEvalCommand().exitOverride();
  command.parse(argv, { from: 'user' });
  const [coders, model, dataset] = command.processedArgs as [string, string | undefined, string | undefined];
  return parseFlags(EvalOptionsSchema, { ...readOptions(command.opts<Record<string, unknown>>(), FIELDS), coders, model, dataset }, 'sparsify eval');
}

/** The report as a table for the terminal: a column per metric that has one (the metric registry's). */
export function formatReport(report: EvalReport): string {
  const coderCols = CODER_METRICS.flatMap((m) => (m.table ? [{ head: m.table.head, cell: (c: CoderEval) => (m.table as Column<unknown>).format((c as Record<string, unknown>)[m.name]) }] : []));
  const spliceCols = SPLICE_METRICS.flatMap((m) => (m.table ? [{ head: m.table.head, cell: (s: SpliceMetrics | null) => (s ? m.table!.format(s[m.name]) : '-') }] : []));
  const head = ['coder', ...coderCols.map((c) => c.head), ...spliceCols.map((c) => c.head)];
  const rows = Object.entries(report.coders).map(([name, c]) => [name, ...coderCols.map((col) => col.cell(c)), ...spliceCols.map((col) => col.cell(c.splice))]);
  if (report.splice_all) rows.push(['(all at once)', ...coderCols.map(() => ''), ...spliceCols.map((col) => col.cell(report.splice_all))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `${report.model} on ${report.dataset}${report.split ? ` (${report.split})` : ''}: rows ${report.rows.start}..${report.rows.end} of ${report.rows.of}, ${report.tokens} tokens, ${report.positions} next-token positions`,
    line(head),
    ...rows.map(line),
  ].join('\n');
}

/** A cross-layer transcoder's report as a table: a row per target layer (this layer spliced alone), then the replacement model. */
export function formatCrossLayerReport(report: CrossLayerEvalReport): string {
  const num = (x: number | null | undefined): string => (typeof x === 'number' ? x.toFixed(4) : '-');
  const head = ['target', 'fvu', 'L0', 'CE spliced', 'CE recovered', 'KL'];
  const rows = Object.entries(report.targets).map(([layer, t]) => [layer, num(t.metrics.fvu), num(t.metrics.l0), num(t.splice?.ce_spliced), num(t.splice?.ce_loss_recovered), num(t.splice?.kl_spliced)]);
  if (report.replacement) rows.push(['(replacement model)', '', '', num(report.replacement.ce_spliced), num(report.replacement.ce_loss_recovered), num(report.replacement.kl_spliced)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [`${report.tokens} tokens`, line(head), ...rows.map(line)].join('\n');
}

/** Run `sparsify eval`; resolves with the exit code. */
export async function evalMain(argv: string[]): Promise<number> {
  let opts: EvalOptions;
  try {
    opts = parseEvalArgs(argv);
  } catch (err) {
    return argumentErrorExit(err, 'eval');
  }
  const terminal = new Terminal({ quiet: opts.json });
  const say = (m: string): void => terminal.say(m);
  try {
    const found = await findCoderRun(opts);
    rowsWithin(opts.maxTokens, found.ctxLen); // a budget of less than a row is said before anything loads
    const out = resolve(opts.out ?? (found.local ? join(found.root, 'eval.json') : 'eval.json'));
    // Where the report goes is checked before anything loads.
    if (existsSync(out) && statSync(out).isDirectory()) throw new ConfigError(`--out ${out} is a folder; give the report's file name (e.g. ${join(out, 'eval.json')})`);
    checkSaveDir(dirname(out));
    const rt = await getRuntime();
    if (!opts.json && opts.verbose) await runtimeConfigure({ progressBars: true }, rt);
    const loaded = await loadCoderRun(found, opts, say, 'evaluate');
    const { model, coders, dataset: full } = loaded;
    const [start, end] = loaded.rows;
    if (loaded.clt) {
      say(`Evaluating the cross-layer transcoder over ${loaded.clt.layers.join(', ')} on rows ${start}..${end} of ${full.numRows}${loaded.heldOut ? ' (not trained on)' : ''}`);
      const clt = await evaluateCrossLayer(model, loaded.clt, full, { rows: [start, end], batchSize: opts.batchSize, excludeTokens: [...new Set([...loaded.specialTokenIds, ...loaded.excludeTokens])] });
      const report = { version: 1, cross_layer: true, model: found.modelName, dataset: found.datasetName, split: found.split, rows: { start, end, of: full.numRows }, ...clt };
      await writeFileAtomic(out, `${JSON.stringify(report, null, 2)}\n`);
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else {
        process.stdout.write(`${formatCrossLayerReport(clt)}\n`);
        say(`Report written to ${out}`);
      }
      return 0;
    }
    say(`Evaluating ${coders.length} coder(s) on rows ${start}..${end} of ${full.numRows}${loaded.heldOut ? ' (not trained on)' : ''}`);

    const densities: Record<string, Float64Array> = {};
    let bar: Bar | undefined;
    const report = await evaluate(model, coders, full, {
      rows: [start, end],
      batchSize: opts.batchSize,
      splice: opts.splice,
      encodeMode: opts.encodeMode,
      excludeTokens: loaded.excludeTokens,
      specialTokenIds: loaded.specialTokenIds,
      describe: { model: found.modelName, dataset: found.datasetName, split: found.split },
      onDensity: (name, d) => (densities[name] = d),
      onBatch: (done, total) => {
        bar ??= terminal.bar({ format: 'eval |{bar}| {value}/{total} batches | ETA {eta_formatted}', total, line: (value, all) => `eval batch ${value}/${all}` });
        bar.update(done);
      },
    });
    terminal.stopBar();
    for (const w of report.warnings) say(`warning: ${w}`);
    // Written only now, when the pass finished: an interrupted run leaves any earlier report.
    await writeSafetensors(join(dirname(out), 'density.safetensors'), densities, { format: 'pt', tokens: String(report.tokens) });
    await writeFileAtomic(out, `${JSON.stringify(report, null, 2)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(`${formatReport(report)}\n`);
      say(`Report written to ${out}`);
    }
    return 0;
  } catch (err) {
    terminal.stopBar();
    return runErrorExit(err, 'eval');
  } finally {
    closeRuntime();
  }
}
