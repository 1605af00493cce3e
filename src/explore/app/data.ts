/**
 * Loading data files: each is a script that calls window.sparsifyData(path, payload). Script
 * tags work from a server and from file:// alike (fetch does not work from file://).
 */

type Waiter = { resolve: (v: unknown) => void; reject: (e: Error) => void };
const waiting = new Map<string, Waiter[]>();
const loaded = new Map<string, unknown>();

declare global {
  interface Window {
    sparsifyData: (path: string, payload: unknown) => void;
  }
}

window.sparsifyData = (path, payload) => {
  loaded.set(path, payload);
  for (const w of waiting.get(path) ?? []) w.resolve(payload);
  waiting.delete(path);
};

/** Thrown when a data file does not exist (a bad coder or latent id). */
export class NotFound extends Error {}

/** The payload of data file `path` (e.g. `coders/0/table`), loaded once. */
export function load<T>(path: string): Promise<T> {
  if (loaded.has(path)) return Promise.resolve(loaded.get(path) as T);
  return new Promise<T>((resolve, reject) => {
    const list = waiting.get(path);
    const waiter = { resolve: resolve as (v: unknown) => void, reject };
    if (list) {
      list.push(waiter);
      return;
    }
    waiting.set(path, [waiter]);
    const script = document.createElement('script');
    script.src = `data/${path}.js`;
    script.onerror = () => {
      for (const w of waiting.get(path) ?? []) w.reject(new NotFound(`no data file ${path}`));
      waiting.delete(path);
      script.remove();
    };
    script.onload = () => script.remove();
    document.head.append(script);
  });
}
