// `sparsify eval`: defaults from the run, which rows, what it writes, and its bad inputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { closeRuntime } from '../../src/bridge/index.js';
import { EvalReportSchema } from '../../src/eval/index.js';
import { makeTinyLM } from '../helpers/python.js';
import { CORPUS } from '../helpers/train-fixtures.js';

let work: string;
let modelDir: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sparsify-cli-eval-'));
  modelDir = await makeTinyLM(join(work, 'lm'));
  closeRuntime();
});
afterAll(() => {
  closeRuntime();
  rmSync(work, { recursive: true, force: true });
});

const lastLine = (text: string): string => text.trim().split('\n').pop()!;

describe('sparsify eval', () => {
  it('evaluates a run on the rows it left out (--holdout), with its model and data, and writes eval.json', async () => {
    const trained = await runCli([modelDir, CORPUS, '--ctx_len', '16', '--max_examples', '200', '--holdout', '0.2', '--batch_size', '16', '-k', '4', '--expansion_factor', '2', '--save_dir', work, '--run_name', 'held', '--log_to_wandb', 'false']);
    expect([trained.code, trained.err]).toEqual([0, expect.stringContaining('more not trained on, held out for evaluation')]);
    const { code, out, err } = await runCli(['eval', join(work, 'held'), '--max_tokens', '320', '--splice', 'both', '--json']);
    expect([code, err]).toEqual([0, '']);
    const report = EvalReportSchema.parse(JSON.parse(out));
    // 200 rows trained on (max_examples is below the 80% holdout leaves), the next 20 evaluated.
    expect(report.rows.start).toBe(200);
    expect(report.rows.end).toBe(220);
    expect(report.model).toBe(modelDir);
    expect(Object.keys(report.coders)).toEqual(['layers.0', 'layers.1']);
    expect(report.splice_all).not.toBeNull();
    expect(EvalReportSchema.parse(JSON.parse(readFileSync(join(work, 'held', 'eval.json'), 'utf8')))).toEqual(report);
    expect(existsSync(join(work, 'held', 'density.safetensors'))).toBe(true);
  });

  it('a run that trained on every row is told to use another split or dataset', async () => {
    // The coders of the first run, with a config that trained on every row.
    const all = join(work, 'all-rows');
    mkdirSync(join(all, 'layers.0'), { recursive: true });
    for (const f of ['cfg.json', 'sae.safetensors']) writeFileSync(join(all, 'layers.0', f), readFileSync(join(work, 'held', 'layers.0', f)));
    const config = JSON.parse(readFileSync(join(work, 'held', 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(all, 'config.json'), JSON.stringify({ ...config, holdout: 0, max_examples: undefined }));
    const { code, err } = await runCli(['eval', all]);
    expect(code).toBe(1);
    expect(lastLine(err)).toBe(`sparsify eval: the run trained on every row of ${CORPUS} (split train); evaluate on another --split or DATASET, or train with --holdout`);
  });

  it('bad input: a missing or empty coder directory, --max_tokens 0, no MODEL for loose coders, a coder that does not fit', async () => {
    expect((await runCli(['eval', join(work, 'nope')])).err.trim()).toBe(`sparsify eval: coders: no such file or directory: ${join(work, 'nope')}`);
    mkdirSync(join(work, 'empty'));
    expect((await runCli(['eval', join(work, 'empty')])).err.trim()).toBe(`sparsify eval: ${join(work, 'empty')}: no coder directories (a coder directory holds cfg.json and sae.safetensors)`);
    expect((await runCli(['eval', join(work, 'held'), '--max_tokens', '0'])).err.trim()).toBe('sparsify eval: --max_tokens must be more than 0 (got 0)');
    const loose = join(work, 'loose', 'layers.0');
    mkdirSync(loose, { recursive: true });
    for (const f of ['cfg.json', 'sae.safetensors']) writeFileSync(join(loose, f), readFileSync(join(work, 'held', 'layers.0', f)));
    expect((await runCli(['eval', join(work, 'loose')])).err.trim()).toBe(`sparsify eval: give MODEL: ${join(work, 'loose')} has no run config.json naming one`);
    const wide = await makeTinyLM(join(work, 'wide'), { hidden: 48 });
    closeRuntime();
    expect(lastLine((await runCli(['eval', join(work, 'loose'), wide, CORPUS, '--ctx_len', '16'])).err)).toBe("sparsify eval: coder layers.0 has d_in=32 but 'layers.0' of this model has width 48");
  });
});
